import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Notification } from '../store/notifications.js';
import type { DeliveryAnswer, EmailChannel } from './channel.js';
import { escapeHtml } from '../escapeHtml.js';

/** What the messages say of the application; `{{appName}}` and `{{supportEmail}}` in every template. */
export interface EmailBranding {
  appName: string;
  supportEmail?: string;
}

export const TEMPLATE_NAMES = [
  'consent',
  'reminder',
  'confirmation',
  'admin_consent',
  'admin_reminder',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

interface Template {
  subject: string;
  text: string;
  html: string;
}

const SUPPORT_TEXT = '{{#supportEmail}}Questions? Write to {{supportEmail}}.{{/supportEmail}}';
const SUPPORT_HTML =
  '{{#supportEmail}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/supportEmail}}';

/** The built-in wording; each part can be replaced by a file in EMAIL_TEMPLATES_DIR (docs/notifications.md). */
const DEFAULT_TEMPLATES: Record<TemplateName, Template> = {
  consent: {
    subject: '{{appName}}: choose Free/Busy to keep your calendar connected',
    text: `{{appName}} now needs only your free/busy times, not your calendar's details.

Please connect your calendar again and choose "Free/Busy" when asked:
{{link}}

The link works until {{expiresAt}}. Until then {{appName}} cannot see when you are busy.
${SUPPORT_TEXT}`,
    html: `<p>{{appName}} now needs only your free/busy times, not your calendar's details.</p>
<p>Please connect your calendar again and choose <strong>Free/Busy</strong> when asked:</p>
<p><a href="{{link}}">Connect my calendar (Free/Busy)</a></p>
<p>The link works until {{expiresAt}}. Until then {{appName}} cannot see when you are busy.</p>
${SUPPORT_HTML}`,
  },
  reminder: {
    subject: 'Reminder: {{appName}} is waiting for your calendar',
    text: `{{appName}} still cannot see when you are busy. Connect your calendar again, choosing "Free/Busy":
{{link}}

The link works until {{expiresAt}}.
${SUPPORT_TEXT}`,
    html: `<p>{{appName}} still cannot see when you are busy. Connect your calendar again, choosing <strong>Free/Busy</strong>:</p>
<p><a href="{{link}}">Connect my calendar (Free/Busy)</a></p>
<p>The link works until {{expiresAt}}.</p>
${SUPPORT_HTML}`,
  },
  confirmation: {
    subject: '{{appName}}: your calendar is connected (Free/Busy)',
    text: `Thank you. {{appName}} is connected to your calendar again, and sees only when you are free or busy.
${SUPPORT_TEXT}`,
    html: `<p>Thank you. {{appName}} is connected to your calendar again, and sees only when you are free or busy.</p>
${SUPPORT_HTML}`,
  },
  admin_consent: {
    subject: '{{appName}}: authorize Free/Busy access for {{domain}}',
    text: `{{appName}} now needs only free/busy times for the people of {{domain}}.

As the administrator, authorize {{appName}} again through Enterprise Connect and choose "Free/Busy":
{{link}}

The link works until {{expiresAt}}. Until then {{appName}} cannot see when your people are busy.
${SUPPORT_TEXT}`,
    html: `<p>{{appName}} now needs only free/busy times for the people of {{domain}}.</p>
<p>As the administrator, authorize {{appName}} again through Enterprise Connect and choose <strong>Free/Busy</strong>:</p>
<p><a href="{{link}}">Authorize Free/Busy for {{domain}}</a></p>
<p>The link works until {{expiresAt}}. Until then {{appName}} cannot see when your people are busy.</p>
${SUPPORT_HTML}`,
  },
  admin_reminder: {
    subject: 'Reminder: {{appName}} is waiting for your authorization for {{domain}}',
    text: `{{appName}} still waits for Free/Busy access for {{domain}}:
{{link}}

The link works until {{expiresAt}}.
${SUPPORT_TEXT}`,
    html: `<p>{{appName}} still waits for Free/Busy access for {{domain}}:</p>
<p><a href="{{link}}">Authorize Free/Busy for {{domain}}</a></p>
<p>The link works until {{expiresAt}}.</p>
${SUPPORT_HTML}`,
  },
};

/** `{{name}}` replaced by its value, `{{#name}}…{{/name}}` kept only when the value is set; HTML escaped. */
export function fill(template: string, values: Record<string, string | undefined>, html: boolean): string {
  const escape = (text: string) => (html ? escapeHtml(text) : text);
  return template
    .replace(/\{\{#(\w+)\}\}([\s\S]*?)\{\{\/\1\}\}/g, (_, name: string, inner: string) =>
      values[name] ? inner : '',
    )
    .replace(/\{\{(\w+)\}\}/g, (_, name: string) => escape(values[name] ?? ''));
}

/** The part of an event's status a message uses: never a token or a code, which the status does not hold. */
interface EventStatus {
  state?: string;
  phase?: string;
  domain?: string;
  authorizationUrl?: string;
  authorizationExpiresAt?: string;
  /** The service's link to the current consent request, and until when it works (a person's). */
  link?: string;
  deadline?: string;
}

/** Which message an event becomes, if any. A domain's status names its domain; a person's does not. */
function templateFor(eventType: string, status: EventStatus): TemplateName | undefined {
  const admin = status.domain !== undefined;
  if (eventType === 'authorization_required') return admin ? 'admin_consent' : 'consent';
  if (eventType === 'reminder') return admin ? 'admin_reminder' : 'reminder';
  if (eventType === 'finished' && !admin && status.state === 'completed') return 'confirmation';
  return undefined;
}

/**
 * Email to the person (or a domain's administrator): the consent link, reminders at the downgrade's cadence, and a
 * confirmation once they are on Free/Busy. Sent over SMTP with nodemailer; each message's Message-ID is made from
 * its event's id, so a message sent again (at least once) can be told apart by the mail system.
 */
export class EmailSender implements EmailChannel {
  readonly #transport: Transporter;

  private constructor(
    smtpUrl: string,
    private readonly from: string,
    private readonly branding: EmailBranding,
    private readonly templates: Record<TemplateName, Template>,
  ) {
    this.#transport = nodemailer.createTransport(smtpUrl);
  }

  /** Reads the application's templates first: one that cannot be read stops the start, not a message later. */
  static async create(options: {
    smtpUrl: string;
    from: string;
    branding: EmailBranding;
    templatesDir?: string;
  }): Promise<EmailSender> {
    const templates = await loadTemplates(options.templatesDir);
    return new EmailSender(options.smtpUrl, options.from, options.branding, templates);
  }

  wants(eventType: string, body: string): boolean {
    return templateFor(eventType, statusOf(body)) !== undefined;
  }

  async send(notification: Notification): Promise<DeliveryAnswer> {
    const status = statusOf(notification.body);
    const name = templateFor(notification.eventType, status);
    if (!name || !notification.recipient) return { delivered: true };
    const template = this.templates[name];
    const until = status.deadline ?? status.authorizationExpiresAt;
    const values = {
      appName: this.branding.appName,
      supportEmail: this.branding.supportEmail,
      // The service's link outlives any one consent request: a message read late still leads to a fresh one.
      link: status.link ?? status.authorizationUrl,
      expiresAt: until ? new Date(until).toUTCString() : undefined,
      domain: status.domain,
    };
    try {
      await this.#transport.sendMail({
        from: this.from,
        to: notification.recipient,
        subject: fill(template.subject, values, false),
        text: fill(template.text, values, false),
        html: fill(template.html, values, true),
        messageId: `<${notification.eventId}@cronofy-downgrade>`,
      });
      return { delivered: true };
    } catch (error) {
      const { responseCode, code } = error as { responseCode?: number; code?: string };
      return { delivered: false, statusCode: responseCode, error: code ?? 'SMTP error' };
    }
  }

  close(): void {
    this.#transport.close();
  }
}

function statusOf(body: string): EventStatus {
  return (JSON.parse(body) as { status?: EventStatus }).status ?? {};
}

/** The built-in templates, with each `<name>.subject`, `<name>.txt` and `<name>.html` found in `dir` instead. */
async function loadTemplates(dir: string | undefined): Promise<Record<TemplateName, Template>> {
  const templates = structuredClone(DEFAULT_TEMPLATES);
  if (!dir) return templates;
  const override = async (file: string) =>
    readFile(join(dir, file), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
  for (const name of TEMPLATE_NAMES) {
    const [subject, text, html] = await Promise.all(
      ['subject', 'txt', 'html'].map((extension) => override(`${name}.${extension}`)),
    );
    if (subject !== undefined) templates[name].subject = subject.trim();
    if (text !== undefined) templates[name].text = text;
    if (html !== undefined) templates[name].html = html;
  }
  return templates;
}
