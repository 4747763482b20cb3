// A local stand-in for Slack, Microsoft Teams, Jira Cloud and GitHub that
// checks every alert request against what the real service documents, for
// the contract tests (alerting/tests/channels.rs) and the outbox's tests.
//
//   node receiver.mjs [port]     port 0 (the default) picks a free one; the
//                                first stdout line is {"port": <port>}
//
// Endpoints, on 127.0.0.1 (a service's part of the URL is its prefix):
//   POST /slack/...                                   Block Kit message → 200 "ok"
//   POST /teams/...                                   Adaptive Card message → 202
//   POST /jira/rest/api/3/issue                       create issue → 201 {id, key, self}
//   POST /jira/rest/api/3/issue/{key}/comment         comment → 201 (404 for an unknown issue)
//   POST /github/repos/{owner}/{repo}/issues          create issue → 201 {number, html_url, ...}
//   POST /github/repos/{owner}/{repo}/issues/{n}/comments  comment → 201 (404 for an unknown issue)
//   GET /_requests     every request so far: {seq, method, path, headers, body,
//                      valid, errors, status, injected, basic_auth (Jira: "email:token")}
//   DELETE /_requests  forgets them
//   POST /_fail {"path_prefix", "status", "times" (1), "retry_after"}: the next
//                      `times` requests whose path starts with path_prefix are
//                      answered `status` (with Retry-After when given), checked
//                      and recorded but without effect (no issue is made)
//   DELETE /_fail      forgets the failures still to come
// A request that breaks its service's contract is answered 400
// {"errors": [...]} (as the service would refuse it) and recorded with
// valid: false. Which schema checks what:
//   GitHub: the request-body schema of POST /repos/{owner}/{repo}/issues in
//     ../third-party-api/github-create-issue.openapi.json; headers per
//     docs.github.com/rest (Bearer token, Accept, X-GitHub-Api-Version, User-Agent).
//   Jira: the request-body schema of POST /rest/api/3/issue in
//     ../third-party-api/jira-create-issue.openapi.json, schemas/jira-issue-fields
//     for what it leaves untyped, and descriptions and comments against the
//     Atlassian Document Format schema of @atlaskit/adf-schema (JSON Schema
//     draft-04, so checked by ajv-draft-04); Basic auth.
//   Slack, Teams: schemas/slack-message and schemas/teams-message, written from
//     their documentation (neither publishes a request schema).
// OpenAPI 3.0 schema objects are JSON Schema with a few more keywords: the
// documents are added to Ajv whole, their own keywords (openapi, paths,
// example, x-…) declared as annotations, and `nullable` without a `type`
// (which Ajv refuses) rewritten as an anyOf with null.
//
// The receiver exits when its stdin is a pipe and the pipe closes, so a test
// that dies leaves no receiver behind.

import { fstatSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

import Ajv from 'ajv';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';

const require = createRequire(import.meta.url);
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
const local = (path) => new URL(path, import.meta.url);

const MAX_BODY = 1 << 20;
const GITHUB_API_VERSIONS = ['2022-11-28', '2026-03-10'];

// ---- validators ---------------------------------------------------------

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, discriminator: true });
addFormats(ajv);
ajv.addKeyword({
  keyword: 'mrkdwn',
  type: 'string',
  schemaType: 'boolean',
  errors: true,
  validate: function mrkdwn(enabled, text) {
    const problems = enabled ? mrkdwnProblems(text) : [];
    mrkdwn.errors = problems.map((message) => ({ keyword: 'mrkdwn', message, params: {} }));
    return problems.length === 0;
  },
});
ajv.addKeyword({
  keyword: 'enumIgnoreCase',
  schemaType: 'array',
  errors: true,
  validate: function enumIgnoreCase(allowed, value) {
    const ok = typeof value === 'string' && allowed.some((a) => a.toLowerCase() === value.toLowerCase());
    enumIgnoreCase.errors = ok ? [] : [{ keyword: 'enumIgnoreCase', message: `must be one of ${allowed.join(', ')} (any case)`, params: {} }];
    return ok;
  },
});

/** The OpenAPI keywords declared to Ajv so far (Ajv cannot list the ones without a definition). */
const annotationKeywords = new Set();

const slackMessage = ajv.compile(readJson(local('schemas/slack-message.schema.json')));
const teamsMessage = ajv.compile(readJson(local('schemas/teams-message.schema.json')));
const jiraIssueFields = ajv.compile(readJson(local('schemas/jira-issue-fields.schema.json')));
const githubCreateIssue = openApiRequestBody('github-create-issue.openapi.json', '/repos/{owner}/{repo}/issues', 'post');
const jiraCreateIssue = openApiRequestBody('jira-create-issue.openapi.json', '/rest/api/3/issue', 'post');
// docs.github.com/rest/issues/comments#create-an-issue-comment
const githubComment = ajv.compile({
  type: 'object',
  required: ['body'],
  properties: { body: { type: 'string', minLength: 1, maxLength: 65536 } },
});
const jiraComment = ajv.compile({ type: 'object', required: ['body'], properties: { body: { type: 'object' } } });
const failRule = ajv.compile({
  type: 'object',
  required: ['path_prefix', 'status'],
  properties: {
    path_prefix: { type: 'string', pattern: '^/' },
    status: { type: 'integer', minimum: 100, maximum: 599 },
    times: { type: 'integer', minimum: 1 },
    retry_after: { type: ['integer', 'string'] },
  },
  additionalProperties: false,
});

const adfAjv = new AjvDraft04({ allErrors: true, strict: true, strictTuples: false });
const adfDocument = adfAjv.compile(readJson(require.resolve('@atlaskit/adf-schema/dist/json-schema/v1/full.json')));

/** The compiled request-body schema of one operation of an OpenAPI 3.0 document. */
function openApiRequestBody(file, path, method) {
  const doc = withNullableTypes(readJson(local(`../third-party-api/${file}`)));
  const annotations = new Set(['openapi', 'info', 'servers', 'paths', 'components', 'security', 'tags', 'externalDocs']);
  annotations.add('example').add('xml');
  (function vendorKeys(node) {
    if (Array.isArray(node)) node.forEach(vendorKeys);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key.startsWith('x-')) annotations.add(key);
        vendorKeys(value);
      }
    }
  })(doc);
  for (const keyword of annotations) {
    if (!annotationKeywords.has(keyword)) ajv.addKeyword(keyword);
    annotationKeywords.add(keyword);
  }
  ajv.addSchema(doc, file);
  const pointer = ['paths', path, method, 'requestBody', 'content', 'application/json', 'schema']
    .map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1'))
    .join('/');
  return ajv.compile({ $ref: `${file}#/${pointer}` });
}

/** OpenAPI 3.0's `nullable: true` on a schema without `type`, as JSON Schema. */
function withNullableTypes(node) {
  if (Array.isArray(node)) return node.map(withNullableTypes);
  if (node === null || typeof node !== 'object') return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withNullableTypes(v)]));
  if (out.nullable === true && out.type === undefined) {
    const { nullable: _, ...rest } = out;
    return { anyOf: [rest, { type: 'null' }] };
  }
  return out;
}

/** A Slack control sequence: a link, a mention, a date token. */
const SLACK_CONTROL =
  /^(?:(?:https?|mailto):[^\s<>|]+|[@#][A-Z0-9]+|!(?:here|channel|everyone)|!subteam\^[A-Z0-9]+|!date\^-?\d+\^[^<>|]+(?:\^[^<>|]+)?)(?:\|[^<>]*)?$/;

/** Where mrkdwn text has an &, < or > that is neither escaped nor part of a control sequence. */
function mrkdwnProblems(text) {
  const problems = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '&' && !/^&(?:amp|lt|gt);/.test(text.slice(i))) problems.push(`an unescaped & at ${i}`);
    if (c === '>') problems.push(`an unescaped > at ${i}`);
    if (c === '<') {
      const end = text.indexOf('>', i);
      const inner = end < 0 ? null : text.slice(i + 1, end);
      if (inner !== null && SLACK_CONTROL.test(inner)) i = end;
      else problems.push(`an unescaped < at ${i} (not a Slack link, mention or date)`);
    }
  }
  return problems;
}

/** A validator's errors as readable lines, under `prefix`. */
function schemaErrors(validate, value, prefix = '') {
  if (validate(value)) return [];
  const lines = validate.errors.map((e) => {
    const where = `${prefix}${e.instancePath}` || '/';
    const extra = e.params?.additionalProperty ?? e.params?.allowedValues ?? e.params?.tagValue;
    return `${where} ${e.message}${extra === undefined ? '' : ` (${JSON.stringify(extra)})`}`;
  });
  return [...new Set(lines)].slice(0, 25);
}

// ---- services -----------------------------------------------------------

const state = { requests: [], failures: [], jiraIssues: new Set(), githubIssues: new Map(), seq: 0 };

const json = (status, value, headers = {}) => ({ status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) });
const text = (status, value) => ({ status, headers: { 'content-type': 'text/plain' }, body: value });

function contentTypeErrors(headers) {
  const type = (headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  return type === 'application/json' ? [] : [`Content-Type must be application/json, not ${JSON.stringify(type)}`];
}

/** Jira Cloud's Basic auth: base64 of `email:api_token`. */
function basicAuth(headers) {
  const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/.exec(headers.authorization ?? '');
  if (!match) return { credentials: null, errors: ['Authorization: Basic <base64 of email:api_token> is required'] };
  const credentials = Buffer.from(match[1], 'base64').toString('utf8');
  const [email, ...token] = credentials.split(':');
  const ok = email.includes('@') && token.join(':').length > 0;
  return { credentials, errors: ok ? [] : ['Authorization: the Basic credentials are not email:api_token'] };
}

function githubHeaderErrors(headers) {
  const errors = [];
  if (!/^Bearer \S+$/.test(headers.authorization ?? '')) errors.push('Authorization: Bearer <token> is required');
  const accepts = (headers.accept ?? '').split(',').map((v) => v.trim());
  if (!accepts.includes('application/vnd.github+json')) errors.push('Accept: application/vnd.github+json is required');
  const version = headers['x-github-api-version'];
  if (!GITHUB_API_VERSIONS.includes(version)) {
    errors.push(`X-GitHub-Api-Version must be one of ${GITHUB_API_VERSIONS.join(', ')}, not ${JSON.stringify(version)}`);
  }
  if (!headers['user-agent']) errors.push('User-Agent is required (GitHub refuses requests without one)');
  return errors;
}

/** Each route checks a request (`errors`) and, when it is valid and no failure is injected, answers it. */
const routes = [
  {
    pattern: /^\/slack(?:\/.*)?$/,
    check: ({ body }) => ({ errors: schemaErrors(slackMessage, body), answer: () => text(200, 'ok') }),
  },
  {
    pattern: /^\/teams(?:\/.*)?$/,
    check: ({ body }) => ({ errors: schemaErrors(teamsMessage, body), answer: () => text(202, '') }),
  },
  {
    pattern: /^\/jira\/rest\/api\/3\/issue$/,
    check: ({ body, headers, origin }) => {
      const auth = basicAuth(headers);
      const errors = [...auth.errors, ...schemaErrors(jiraCreateIssue, body), ...schemaErrors(jiraIssueFields, body)];
      const description = body?.fields?.description;
      if (description !== undefined) errors.push(...schemaErrors(adfDocument, description, '/fields/description'));
      const answer = () => {
        const id = String(10000 + state.jiraIssues.size);
        const key = `${body.fields.project.key ?? 'OPS'}-${state.jiraIssues.size + 1}`;
        state.jiraIssues.add(key);
        return json(201, { id, key, self: `${origin}/jira/rest/api/3/issue/${id}` });
      };
      return { errors, answer, basic_auth: auth.credentials };
    },
  },
  {
    pattern: /^\/jira\/rest\/api\/3\/issue\/([^/]+)\/comment$/,
    check: ({ body, headers, match, origin }) => {
      const auth = basicAuth(headers);
      const errors = [...auth.errors, ...schemaErrors(jiraComment, body)];
      if (body?.body && typeof body.body === 'object') errors.push(...schemaErrors(adfDocument, body.body, '/body'));
      const key = decodeURIComponent(match[1]);
      const answer = () =>
        state.jiraIssues.has(key)
          ? json(201, { id: String(20000 + state.seq), self: `${origin}/jira/rest/api/3/issue/${key}/comment/${20000 + state.seq}`, body: body.body })
          : json(404, { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} });
      return { errors, answer, basic_auth: auth.credentials };
    },
  },
  {
    pattern: /^\/github\/repos\/([^/]+)\/([^/]+)\/issues$/,
    check: ({ body, headers, match, origin }) => {
      const errors = [...githubHeaderErrors(headers), ...schemaErrors(githubCreateIssue, body)];
      const answer = () => {
        const repo = `${decodeURIComponent(match[1])}/${decodeURIComponent(match[2])}`;
        const number = (state.githubIssues.get(repo) ?? 0) + 1;
        state.githubIssues.set(repo, number);
        const url = `${origin}/github/repos/${repo}/issues/${number}`;
        return json(
          201,
          { id: 1000 + number, number, url, html_url: `https://github.com/${repo}/issues/${number}`, title: String(body.title), state: 'open' },
          { location: url },
        );
      };
      return { errors, answer };
    },
  },
  {
    pattern: /^\/github\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
    check: ({ body, headers, match, origin }) => {
      const errors = [...githubHeaderErrors(headers), ...schemaErrors(githubComment, body)];
      const repo = `${decodeURIComponent(match[1])}/${decodeURIComponent(match[2])}`;
      const number = Number(match[3]);
      const answer = () =>
        number >= 1 && number <= (state.githubIssues.get(repo) ?? 0)
          ? json(201, { id: 5000 + state.seq, body: body.body, issue_url: `${origin}/github/repos/${repo}/issues/${number}` })
          : json(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
      return { errors, answer };
    },
  },
];

// ---- server -------------------------------------------------------------

function control(method, path, body) {
  if (path === '/_requests' && method === 'GET') return json(200, state.requests);
  if (path === '/_requests' && method === 'DELETE') {
    state.requests = [];
    return json(200, { ok: true });
  }
  if (path === '/_fail' && method === 'POST') {
    const errors = schemaErrors(failRule, body);
    if (errors.length > 0) return json(400, { errors });
    state.failures.push({ times: 1, ...body });
    return json(200, { ok: true });
  }
  if (path === '/_fail' && method === 'DELETE') {
    state.failures = [];
    return json(200, { ok: true });
  }
  return json(404, { errors: [`no control endpoint ${method} ${path}`] });
}

function handle(method, path, headers, raw, origin) {
  let body = null;
  const errors = [];
  if (raw.length > 0) {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      errors.push('the body is not JSON');
    }
  }
  if (path.startsWith('/_')) return { response: control(method, path, body) };

  const record = { seq: ++state.seq, method, path, headers, body, valid: false, errors, status: 0, injected: false };
  if (body === null && errors.length === 0) record.raw = raw.toString('utf8');
  let response;
  const route = method === 'POST' ? routes.find((r) => r.pattern.test(path)) : undefined;
  if (!route) {
    errors.push(`no endpoint ${method} ${path}`);
    response = json(404, { errors });
  } else {
    errors.push(...contentTypeErrors(headers));
    const checked = route.check({ body, headers, match: route.pattern.exec(path), origin });
    errors.push(...checked.errors);
    if (checked.basic_auth !== undefined) record.basic_auth = checked.basic_auth;
    const failure = state.failures.find((f) => f.times > 0 && path.startsWith(f.path_prefix));
    if (failure) {
      failure.times -= 1;
      state.failures = state.failures.filter((f) => f.times > 0);
      const retryAfter = failure.retry_after === undefined ? {} : { 'retry-after': String(failure.retry_after) };
      response = json(failure.status, { error: 'injected failure' }, retryAfter);
      record.injected = true;
    } else {
      response = errors.length > 0 ? json(400, { errors: [...new Set(errors)] }) : checked.answer();
    }
  }
  record.errors = [...new Set(errors)];
  record.valid = errors.length === 0;
  record.status = response.status;
  state.requests.push(record);
  return { response };
}

const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on('end', () => {
    let response;
    if (size > MAX_BODY) {
      response = json(413, { errors: [`the body is over ${MAX_BODY} bytes`] });
    } else {
      const url = new URL(req.url, `http://${req.headers.host ?? '127.0.0.1'}`);
      ({ response } = handle(req.method, url.pathname, req.headers, Buffer.concat(chunks), url.origin));
    }
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  });
});

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});

if (fstatSync(0).isFIFO()) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
