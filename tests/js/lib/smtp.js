// A real SMTP server in the test process: Outpost sends its auth mails here.
//
//   const smtp = await startSmtp();
//   ... startServer({ env: { ...smtp.env } })            // OUTPOST_SMTP_HOST/PORT/TLS
//   const mail = await smtp.waitForMail({ to: 'a@example.com', subjectIncludes: 'Confirm' });
//   mail.code          // the 6-digit code, or null
//   mail.links         // every http(s) URL in the text and HTML parts
//   verifyLink(mail)   // the first link to /auth/v1/verify
//   await smtp.expectNoMail({ to: 'b@example.com', withinMs: 1000 });
//   await smtp.stop();
//
// Plain SMTP on 127.0.0.1 with no TLS (STARTTLS is neither offered nor accepted); AUTH is optional
// and any credentials are accepted. Messages are parsed with mailparser's simpleParser.

import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

const HTML_ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#x2F': '/', '#47': '/' };

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, name) => {
    if (name in HTML_ENTITIES) return HTML_ENTITIES[name];
    if (/^#x/i.test(name)) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return m;
  });
}

/** Every http(s) URL in a text (hrefs first, then bare URLs), entity-decoded, without duplicates. */
export function extractLinks(text = '', html = '') {
  const out = [];
  const add = (u) => {
    const url = decodeEntities(u.trim()).replace(/[).,;:!?'"\]>]+$/, '');
    if (/^https?:\/\//i.test(url) && !out.includes(url)) out.push(url);
  };
  for (const m of html.matchAll(/href\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) add(m[1] ?? m[2]);
  for (const m of html.matchAll(/https?:\/\/[^\s"'<>]+/gi)) add(m[0]);
  for (const m of text.matchAll(/https?:\/\/[^\s"'<>\]]+/gi)) add(m[0]);
  return out;
}

/** The 6-digit code in a mail's text (URLs and tags removed first), or null. */
export function extractCode(text = '', html = '') {
  // drop tags, URLs and e-mail addresses (which may hold digits) before looking for the code
  const scrub = (s) =>
    decodeEntities(s.replace(/<[^>]*>/g, ' '))
      .replace(/https?:\/\/\S+/gi, ' ')
      .replace(/[^\s<>"']+@[^\s<>"']+/g, ' ');
  for (const body of [text, html]) {
    const m = /(?<![0-9A-Za-z])(\d{6})(?![0-9A-Za-z])/.exec(scrub(body || ''));
    if (m) return m[1];
  }
  return null;
}

/** The first link to `/auth/v1/verify` in a parsed mail (throws if there is none). */
export function verifyLink(mail) {
  const link = mail.links.find((l) => new URL(l).pathname.endsWith('/auth/v1/verify'));
  if (!link) throw new Error(`no /auth/v1/verify link in mail "${mail.subject}":\n${mail.text}\n${mail.html}`);
  return link;
}

function describe(m) {
  return `  to=${m.to.join(',')} subject=${JSON.stringify(m.subject)}`;
}

/**
 * Start an SMTP server on 127.0.0.1 and a free port.
 * @returns {Promise<{host, port, env, mails, waitForMail, expectNoMail, clear, stop}>}
 */
export async function startSmtp({ host = '127.0.0.1' } = {}) {
  /** every mail received, in order; `consumed` marks those handed out by waitForMail */
  const mails = [];
  const waiters = new Set();

  const matches = (mail, { to, subjectIncludes }) => {
    if (to && !mail.to.includes(to.toLowerCase())) return false;
    if (subjectIncludes && !mail.subject.toLowerCase().includes(subjectIncludes.toLowerCase())) return false;
    return true;
  };

  const deliver = (mail) => {
    mails.push(mail);
    for (const w of waiters) {
      if (!mail.consumed && matches(mail, w.filter)) {
        mail.consumed = true;
        waiters.delete(w);
        w.resolve(mail);
      }
    }
  };

  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    authOptional: true,
    allowInsecureAuth: true,
    disableReverseLookup: true,
    logger: false,
    banner: 'outpost-test-smtp',
    onAuth(auth, session, callback) {
      callback(null, { user: auth.username || 'anyone' });
    },
    onData(stream, session, callback) {
      const envelopeTo = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
      const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : null;
      simpleParser(stream)
        .then((parsed) => {
          const headerTo = (parsed.to ? [].concat(parsed.to) : [])
            .flatMap((a) => a.value)
            .map((v) => (v.address || '').toLowerCase());
          const text = parsed.text || '';
          const html = typeof parsed.html === 'string' ? parsed.html : '';
          const mail = {
            to: [...new Set([...envelopeTo, ...headerTo])],
            envelopeTo,
            envelopeFrom,
            from: parsed.from ? parsed.from.value : [],
            subject: parsed.subject || '',
            text,
            html,
            headers: parsed.headers,
            links: extractLinks(text, html),
            code: extractCode(text, html),
            receivedAt: Date.now(),
            consumed: false,
            auth: session.user ?? null,
          };
          deliver(mail);
          callback(null, 'queued');
        })
        .catch((err) => callback(err));
    },
  });
  server.on('error', () => {}); // a client dropping the connection is not our failure

  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.server.address();

  /**
   * Resolve with the oldest not-yet-taken mail matching {to, subjectIncludes}; waits for one
   * to arrive for up to timeoutMs. A mail is handed out once.
   */
  const waitForMail = ({ to, subjectIncludes, timeoutMs = 5000 } = {}) => {
    const filter = { to, subjectIncludes };
    const have = mails.find((m) => !m.consumed && matches(m, filter));
    if (have) {
      have.consumed = true;
      return Promise.resolve(have);
    }
    return new Promise((resolve, reject) => {
      const w = { filter, resolve };
      const timer = setTimeout(() => {
        waiters.delete(w);
        const seen = mails.map(describe).join('\n') || '  (none)';
        reject(
          new Error(
            `no mail to ${to ?? '*'}${subjectIncludes ? ` with subject containing "${subjectIncludes}"` : ''} ` +
              `within ${timeoutMs} ms; mails received so far:\n${seen}`,
          ),
        );
      }, timeoutMs);
      w.resolve = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      waiters.add(w);
    });
  };

  /** Fail if a not-yet-taken mail for `to` is there or arrives within withinMs. */
  const expectNoMail = async ({ to, subjectIncludes, withinMs = 1000 } = {}) => {
    let got = null;
    try {
      got = await waitForMail({ to, subjectIncludes, timeoutMs: withinMs });
    } catch {
      return;
    }
    throw new Error(`expected no mail to ${to}, got:\n${describe(got)}\n${got.text}`);
  };

  /** Mark every mail received so far as taken (or only those to `to`). */
  const clear = (to) => {
    for (const m of mails) if (!to || m.to.includes(to.toLowerCase())) m.consumed = true;
  };

  const stop = () =>
    new Promise((resolve) => {
      for (const w of waiters) waiters.delete(w);
      server.close(() => resolve());
    });

  return {
    host,
    port,
    /** the env that points Outpost at this server */
    env: { OUTPOST_SMTP_HOST: host, OUTPOST_SMTP_PORT: String(port), OUTPOST_SMTP_TLS: 'none' },
    mails,
    waitForMail,
    expectNoMail,
    clear,
    stop,
  };
}
