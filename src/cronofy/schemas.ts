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
        .looseObject({ scope: z.string().optional(), status: z.string().optional() })
        .optional(),
      profiles: z.array(LinkingProfile).optional(),
    })
    .optional(),
});
export type UserInfo = z.infer<typeof UserInfo>;

export const OAuthErrorBody = z.looseObject({ error: z.string() });
