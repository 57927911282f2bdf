import { z } from 'zod';

/** Cronofy labels parts of these responses alpha/beta: parse what we use, keep the rest (`z.looseObject`). */
export const LinkingProfile = z.looseObject({
  provider_name: z.string(),
  provider_service: z.string().optional(),
  profile_id: z.string().optional(),
  profile_name: z.string().optional(),
});
export type LinkingProfile = z.infer<typeof LinkingProfile>;

export const AccessTokenResponse = z.looseObject({
  token_type: z.string(),
  access_token: z.string().min(1),
  expires_in: z.number(),
  refresh_token: z.string().min(1).optional(),
  scope: z.string().default(''),
  account_id: z.string().optional(),
  sub: z.string().optional(),
  service_account_id: z.string().optional(),
  linking_profile: LinkingProfile.optional(),
});
export type AccessTokenResponse = z.infer<typeof AccessTokenResponse>;

export const UserInfo = z.looseObject({
  sub: z.string(),
  email: z.string().optional(),
  'cronofy.type': z.string().optional(),
  'cronofy.data': z
    .looseObject({
      authorization: z
        .looseObject({
          scope: z.string().optional(),
          status: z.string().optional(),
          delegated_scope: z.string().optional(),
        })
        .optional(),
      profiles: z.array(LinkingProfile).optional(),
    })
    .optional(),
});
export type UserInfo = z.infer<typeof UserInfo>;

export const OAuthErrorBody = z.looseObject({ error: z.string() });

export interface ServiceAccountProfile {
  providerName?: string;
  domain?: string;
  scope?: string;
  delegatedScope?: string;
  status?: string;
}

/** The service account's provider and domain from its userinfo, in the nested or the older flat layout. */
export function serviceAccountProfile(info: UserInfo): ServiceAccountProfile {
  const nested = z
    .looseObject({
      service_account: z.looseObject({ provider_name: z.string().optional(), domain: z.string().optional() }),
    })
    .safeParse(info['cronofy.data']);
  const flat = z
    .looseObject({
      'cronofy.service_account.provider_name': z.string().optional(),
      'cronofy.service_account.domain': z.string().optional(),
    })
    .parse(info);
  return {
    providerName: nested.data?.service_account.provider_name ?? flat['cronofy.service_account.provider_name'],
    domain: nested.data?.service_account.domain ?? flat['cronofy.service_account.domain'],
    scope: info['cronofy.data']?.authorization?.scope,
    delegatedScope: info['cronofy.data']?.authorization?.delegated_scope,
    status: info['cronofy.data']?.authorization?.status,
  };
}
