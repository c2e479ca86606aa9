// Drive the demo (demo/app.py) with the official socket.io-client (Node).
//
//   node demo_client.js '<config-json>'
//
// config: {
//   port, transport: "websocket" | "polling",
//   mode: "header"       -> the session cookie goes in extraHeaders.cookie only;
//         "credentials"  -> withCredentials: true (the client keeps the cookies the
//                           server sets, in its own jar) plus the session cookie in
//                           extraHeaders.cookie,
//   interval: SESSION_RELOAD_INTERVAL in seconds, slack: extra seconds allowed,
//   destroy: argv run (execFileSync) to destroy a session in the store; "{sid}" in it
//            is replaced by the session id,
//   only: [scenario names] (optional)
// }
// Runs the scenarios one after the other, each with its own sessions (GET /) and
// sockets, and prints ONE JSON object as the last stdout line:
//   { transport, mode, results: { <scenario>: {...observed values} | { error } } }
// Every wait is bounded; nothing sleeps for synchronisation. The socket.io-client's HTTP
// requests (polling requests and WebSocket upgrades) are recorded at Node's
// http.request, with the Cookie header sent and the Set-Cookie headers received.

const http = require("http");
const { execFileSync } = require("child_process");
const { io } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const base = `http://127.0.0.1:${cfg.port}`;
const WAIT = 10000;
const interval = cfg.interval || 1;
const slack = cfg.slack || 8;

// -- wire recording ---------------------------------------------------------------------

let wire = [];
const realRequest = http.request;
http.request = function request(...args) {
  const req = realRequest.apply(this, args);
  if (req.path && req.path.startsWith("/socket.io/")) {
    const url = new URL(req.path, base);
    const cookie = req.getHeader("cookie");
    const rec = {
      method: req.method,
      transport: url.searchParams.get("transport"),
      sid: url.searchParams.get("sid"),
      cookie: cookie === undefined ? null : cookie,
      origin: req.getHeader("origin") || null,
      status: null,
      setCookie: null,
    };
    wire.push(rec);
    req.on("response", (res) => {
      rec.status = res.statusCode;
      rec.setCookie = res.headers["set-cookie"] || [];
    });
    req.on("upgrade", (res) => {
      rec.status = res.statusCode;
      rec.setCookie = res.headers["set-cookie"] || [];
    });
  }
  return req;
};

// -- bounded waits ----------------------------------------------------------------------

function bounded(promise, what, ms = WAIT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function once(emitter, event, ms = WAIT) {
  return bounded(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))),
                 `"${event}"`, ms);
}

// Resolves when pred() is true, checking each time `emitter` fires `event`.
function until(emitter, event, pred, what, ms = WAIT) {
  return bounded(new Promise((resolve) => {
    const check = () => {
      if (pred()) {
        emitter.off(event, check);
        resolve();
      }
    };
    emitter.on(event, check);
    check();
  }), what, ms);
}

function ack(s, event, ...args) {
  return bounded(new Promise((resolve) => s.emit(event, ...args, (...r) => resolve(r))),
                 `ack of "${event}"`);
}

// -- HTTP with fetch (not recorded: undici does not use http.request) --------------------

function setCookies(res) {
  return res.headers.getSetCookie ? res.headers.getSetCookie() : [];
}

function cookieValue(list, name) {
  for (const c of list) {
    const first = c.split(";")[0];
    const i = first.indexOf("=");
    if (first.slice(0, i).trim() === name) return first.slice(i + 1);
  }
  return null;
}

// A new browser session: GET / and keep its session cookie.
async function newSession() {
  const res = await bounded(fetch(`${base}/`), "GET /");
  const body = await res.text();
  const sid = cookieValue(setCookies(res), "session");
  if (!sid) throw new Error(`GET / set no session cookie (${res.status})`);
  return { sid, cookie: `session=${sid}`, count: pageCount(body) };
}

function pageCount(html) {
  const m = /data-testid="count">\s*(-?\d+)\s*</.exec(html);
  return m ? Number(m[1]) : null;
}

async function post(path, session, headers = {}) {
  const res = await bounded(fetch(`${base}${path}`, {
    method: "POST", headers: { cookie: session.cookie, ...headers } }), `POST ${path}`);
  const body = await res.text();
  return { status: res.status, body, setCookie: setCookies(res) };
}

async function page(session) {
  const res = await bounded(fetch(`${base}/`, { headers: { cookie: session.cookie } }), "GET /");
  return { status: res.status, count: pageCount(await res.text()), setCookie: setCookies(res) };
}

// -- sockets ----------------------------------------------------------------------------

let opened = [];

function options(session, extra = {}) {
  const headers = session.cookie ? { cookie: session.cookie } : {};
  const opts = { transports: [cfg.transport], forceNew: true, reconnection: false,
                 timeout: WAIT, extraHeaders: headers, ...extra };
  if (cfg.mode === "credentials") opts.withCredentials = true;
  return opts;
}

async function connect(session, extra = {}) {
  const s = io(base, options(session, extra));
  opened.push(s);
  await bounded(new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  }), "connect");
  return s;
}

function inbox(s, event) {
  const got = [];
  s.on(event, (...args) => got.push(args));
  return got;
}

function jar(s) {
  const j = s.io.engine && s.io.engine._cookieJar;
  if (!j) return null;
  const out = {};
  for (const [name, c] of j.cookies) out[name] = c.value;
  return out;
}

// -- scenarios --------------------------------------------------------------------------

const scenarios = {
  // Two sockets of one session both get "current count"; a socket of another session
  // does not (its own POST /incr is the barrier: the server writes to one socket in order).
  async rooms() {
    const A = await newSession();
    const B = await newSession();
    const a1 = await connect(A);
    const a2 = await connect(A);
    const b1 = await connect(B);
    const inA1 = inbox(a1, "current count");
    const inA2 = inbox(a2, "current count");
    const inB1 = inbox(b1, "current count");
    const p1 = await post("/incr", A);
    await until(a1, "current count", () => inA1.length >= 1, "a1 count 1");
    await until(a2, "current count", () => inA2.length >= 1, "a2 count 1");
    const p2 = await post("/incr", B);
    await until(b1, "current count", () => inB1.length >= 1, "b1 count 1");
    const p3 = await post("/incr", A);
    await until(a1, "current count", () => inA1.length >= 2, "a1 count 2");
    await until(a2, "current count", () => inA2.length >= 2, "a2 count 2");
    return { posts: [p1.body, p2.body, p3.body], a1: inA1, a2: inA2, b1: inB1,
             ids: [a1.id, a2.id, b1.id], transports: [a1, a2, b1].map((s) => s.io.engine.transport.name) };
  },

  // "my event" acks the incremented count; later POST /incr continues from it.
  async ack() {
    const A = await newSession();
    const s1 = await connect(A);
    const s2 = await connect(A);
    const in1 = inbox(s1, "current count");
    const p1 = await post("/incr", A);
    const [ack1] = await ack(s1, "my event");
    const p2 = await post("/incr", A);
    const [ack2] = await ack(s2, "my event");
    const [ack3] = await ack(s1, "my event");
    const p3 = await post("/incr", A);
    await until(s1, "current count", () => in1.length >= 3, "three current counts on s1");
    const after = await page(A);
    return { initial: A.count, posts: [p1.body, p2.body, p3.body], acks: [ack1, ack2, ack3],
             s1counts: in1, page: after.count };
  },

  // POST /logout disconnects that session's sockets only; the old cookie then meets a
  // fresh session.
  async logout() {
    const A = await newSession();
    const B = await newSession();
    const a1 = await connect(A);
    const a2 = await connect(A);
    const b1 = await connect(B);
    const reasons = { a1: [], a2: [], b1: [] };
    a1.on("disconnect", (r) => reasons.a1.push(r));
    a2.on("disconnect", (r) => reasons.a2.push(r));
    b1.on("disconnect", (r) => reasons.b1.push(r));
    const inB1 = inbox(b1, "current count");
    const before = [(await post("/incr", A)).body, (await post("/incr", A)).body];
    const gone1 = once(a1, "disconnect");
    const gone2 = once(a2, "disconnect");
    const out = await post("/logout", A);
    await gone1;
    await gone2;
    const pB = await post("/incr", B); // barrier for b1: it must get its own count
    await until(b1, "current count", () => inB1.length >= 1, "b1 count after logout");
    const afterLogout = await post("/incr", A);
    const again = await post("/incr", A);
    return { before, logout: { status: out.status, body: out.body, setCookie: out.setCookie },
             reasons, connected: { a1: a1.connected, a2: a2.connected, b1: b1.connected },
             b1counts: inB1, postB: pB.body, afterLogout: afterLogout.body, again: again.body,
             newSid: cookieValue(afterLogout.setCookie, "session"), oldSid: A.sid };
  },

  // The session is destroyed in the store behind the demo's back: within one reload
  // interval (+ slack) the transport is closed and the client reconnects.
  async expiry() {
    const C = await newSession();
    const D = await newSession();
    const s = await connect(C, { reconnection: true, reconnectionDelay: 100,
                                 reconnectionDelayMax: 300 });
    const d = await connect(D);
    const dReasons = [];
    d.on("disconnect", (r) => dReasons.push(r));
    const inS = inbox(s, "current count");
    await post("/incr", C);
    await until(s, "current count", () => inS.length >= 1, "count before expiry");
    const firstId = s.id;
    const disconnected = once(s, "disconnect", (interval + slack) * 1000);
    const destroyed = JSON.parse(execFileSync(cfg.destroy[0],
      cfg.destroy.slice(1).map((a) => a.replace("{sid}", C.sid)), { encoding: "utf8" })
      .trim().split("\n").pop());
    const t0 = Date.now();
    const [reason] = await disconnected;
    const elapsed = (Date.now() - t0) / 1000;
    await once(s, "connect");
    const [ackAfter] = await ack(s, "my event");
    const dAck = await ack(d, "my event");
    return { destroyed, reason, elapsed, reconnected: s.connected, sameId: s.id === firstId,
             ackAfter, other: { connected: d.connected, reasons: dReasons, ack: dAck[0] } };
  },

  // What went over the wire for one socket: the Cookie header sent and Set-Cookie received.
  async wire() {
    const A = await newSession();
    wire = [];
    const s = await connect(A);
    const engineId = s.io.engine.id;
    const [n1] = await ack(s, "my event");
    const [n2] = await ack(s, "my event");
    const records = wire.slice();
    return { engineId, session: A.cookie, acks: [n1, n2], records, jar: jar(s) };
  },

  // With the default transports (polling, then the upgrade): the WebSocket upgrade
  // request carries the io cookie from the client's jar (what a sticky balancer needs).
  async upgradeCookie() {
    if (cfg.mode !== "credentials" || cfg.transport !== "polling") {
      return { skipped: "run with withCredentials, in the polling-only run" };
    }
    const A = await newSession();
    wire = [];
    const s = await connect(A, { transports: ["polling", "websocket"] });
    const engine = s.io.engine;
    if (engine.transport.name !== "websocket") await once(engine, "upgrade");
    const [n] = await ack(s, "my event");
    return { engineId: engine.id, transport: engine.transport.name, ack: n,
             records: wire.filter((r) => r.sid === null || r.sid === engine.id) };
  },

  // Sockets whose handshake names no stored session: no session cookie at all, and a
  // stale one (a session the store no longer has). "my event" saves the socket's new
  // session; the next "my event" must see that count, and the socket must stay connected.
  async noSession() {
    const run = async (cookie) => {
      const s = await connect({ cookie });
      const gone = new Promise((resolve) => s.once("disconnect", (r) => resolve({ disconnect: r })));
      const got = [];
      for (let i = 0; i < 2; i++) {
        const r = await Promise.race([ack(s, "my event").then(([n]) => ({ ack: n })), gone]);
        got.push(r);
        if (r.disconnect) break;
      }
      return got;
    };
    const [none, stale] = await Promise.all([run(null), run("session=no-such-session-id")]);
    return { none, stale };
  },

  // A cross-origin client: refused from an unknown origin, accepted from CORS_ORIGIN.
  async origins() {
    const A = await newSession();
    const s = io(base, options(A, { extraHeaders: { cookie: A.cookie, origin: "http://evil.example" } }));
    opened.push(s);
    const err = await bounded(new Promise((resolve, reject) => {
      s.once("connect", () => reject(new Error("connected from http://evil.example")));
      s.once("connect_error", resolve);
    }), "connect_error from evil origin");
    const ok = await connect(A, { extraHeaders: { cookie: A.cookie, origin: "http://localhost:4200" } });
    const [n] = await ack(ok, "my event");
    const d = err.description;
    return { evil: { message: err.message,
                     description: String(d && d.message ? d.message : d),
                     connected: s.connected },
             allowed: { connected: ok.connected, ack: n } };
  },
};

async function main() {
  const results = {};
  for (const [name, fn] of Object.entries(scenarios)) {
    if (cfg.only && !cfg.only.includes(name)) continue;
    opened = [];
    try {
      // a snapshot: the sockets closed below must not change what the scenario saw
      results[name] = JSON.parse(JSON.stringify(await fn()));
    } catch (err) {
      results[name] = { error: String(err && err.stack ? err.stack : err) };
    } finally {
      for (const s of opened) s.disconnect();
    }
  }
  console.log(JSON.stringify({ transport: cfg.transport, mode: cfg.mode, results }));
  process.exit(0);
}

main();
