// Drive the echo server (tests/servers/engine_echo.py) with the official engine.io-client.
//
//   node eio_echo.js '<config-json>'
//
// config: { port, transports: [...], upgrade: bool, steps: [...], count, pings, timeout }
// Steps run in order once the socket is open:
//   straddle     send messages in small batches from the "open" event on, until the upgrade
//                happened and at least `count` were sent (50+ after the upgrade); then
//                collect every echo (must be the first step)
//   waitUpgrade  wait for the "upgrade" event
//   echo         send "hello", a Buffer and "héllo €"; collect the three echoes
//   order        send `count` messages at once; collect the echoes
//   pings        wait for `pings` ping packets, then check the socket still echoes
//   serverClose  send "close"; wait for the "close" event
//   clientClose  socket.close(); wait for the "close" event
// Prints ONE JSON object (the last stdout line) describing what happened.

const { Socket } = require("engine.io-client");

const cfg = JSON.parse(process.argv[2]);
const opts = { path: "/socket.io/", transports: cfg.transports };
if (cfg.upgrade === false) opts.upgrade = false;

const result = {
  sid: null,
  transportAtOpen: null,
  upgrades: [],
  errors: [],
  closes: [],
  steps: {},
};
let finished = false;

function finish(extra) {
  if (finished) return;
  finished = true;
  clearTimeout(deadline);
  Object.assign(result, extra || {});
  process.stdout.write(JSON.stringify(result) + "\n");
  if (result.timedOut) {
    process.exit(0);
  } else {
    // Exit once idle, so what is still being written (the CLOSE packet's POST after
    // socket.close() on polling) reaches the server; never linger more than 5 s.
    setTimeout(() => process.exit(0), 5000).unref();
  }
}

const deadline = setTimeout(() => finish({ timedOut: true }), cfg.timeout || 20000);

const socket = new Socket(`http://127.0.0.1:${cfg.port}`, opts);

// Every message, with the transport it arrived on.
const inbox = [];
let wake = null;
socket.on("message", (data) => {
  inbox.push({ data, transport: socket.transport.name });
  if (wake) wake();
});

function take(n) {
  return new Promise((resolve) => {
    const check = () => {
      if (inbox.length >= n) {
        wake = null;
        resolve(inbox.splice(0, n));
      }
    };
    wake = check;
    check();
  });
}

let upgraded = false;
const upgradeWaiters = [];
socket.on("upgrade", (transport) => {
  upgraded = true;
  result.upgrades.push(transport.name);
  upgradeWaiters.splice(0).forEach((fn) => fn());
});
socket.on("upgradeError", (err) => result.errors.push(`upgradeError: ${err && err.message}`));
socket.on("error", (err) => result.errors.push(String(err && (err.message || err))));

let pings = 0;
const pingWaiters = [];
socket.on("ping", () => {
  pings += 1;
  pingWaiters.splice(0).forEach((fn) => fn());
});

const closeWaiters = [];
socket.on("close", (reason, description) => {
  let desc = null;
  if (description) desc = description.message || description.description || String(description);
  result.closes.push({ reason, description: desc });
  closeWaiters.splice(0).forEach((fn) => fn());
});

function closed() {
  return new Promise((resolve) => {
    if (result.closes.length) resolve();
    else closeWaiters.push(resolve);
  });
}

function describe(data) {
  if (typeof data === "string") return { type: "string", text: data };
  return {
    type: Buffer.isBuffer(data) ? "Buffer" : Object.prototype.toString.call(data),
    hex: Buffer.from(data).toString("hex"),
  };
}

function checkOrder(received, expected) {
  const texts = received.map((m) => m.data);
  let firstMismatch = -1;
  for (let i = 0; i < expected.length; i++) {
    if (texts[i] !== expected[i]) {
      firstMismatch = i;
      break;
    }
  }
  const byTransport = {};
  received.forEach((m) => (byTransport[m.transport] = (byTransport[m.transport] || 0) + 1));
  return {
    sent: expected.length,
    received: received.length,
    inOrder: firstMismatch === -1,
    firstMismatch,
    around: firstMismatch === -1 ? null : texts.slice(firstMismatch, firstMismatch + 3),
    byTransport,
  };
}

// The straddle sender starts on "open", before any other step.
let straddle = null;

function startStraddle() {
  const count = cfg.count || 500;
  const state = { sent: 0, beforeUpgrade: 0, afterUpgrade: 0, done: null };
  state.finished = new Promise((resolve) => (state.done = resolve));
  const batch = () => {
    for (let i = 0; i < 5; i++) {
      socket.send(`s${state.sent}`);
      state.sent += 1;
      if (upgraded) state.afterUpgrade += 1;
      else state.beforeUpgrade += 1;
    }
    if (upgraded && state.sent >= count && state.afterUpgrade >= 50) state.done();
    else if (state.sent > 200000 || result.closes.length) state.done();
    else setTimeout(batch, 1);
  };
  batch();
  return state;
}

const steps = {
  async straddle() {
    await straddle.finished;
    const expected = Array.from({ length: straddle.sent }, (_, i) => `s${i}`);
    const received = await take(straddle.sent);
    return Object.assign(checkOrder(received, expected), {
      sentBeforeUpgrade: straddle.beforeUpgrade,
      sentAfterUpgrade: straddle.afterUpgrade,
    });
  },
  async waitUpgrade() {
    if (!upgraded) await new Promise((resolve) => upgradeWaiters.push(resolve));
    return { transport: socket.transport.name };
  },
  async echo() {
    const sent = ["hello", Buffer.from([0, 1, 2, 127, 128, 253, 254, 255]), "héllo €"];
    sent.forEach((m) => socket.send(m));
    const received = await take(sent.length);
    return {
      transport: socket.transport.name,
      received: received.map((m) => Object.assign(describe(m.data), { transport: m.transport })),
    };
  },
  async order() {
    const count = cfg.count || 500;
    const expected = Array.from({ length: count }, (_, i) => `m${i}`);
    expected.forEach((m) => socket.send(m));
    return checkOrder(await take(count), expected);
  },
  async pings() {
    const sid = socket.id;
    while (pings < cfg.pings) {
      await new Promise((resolve) => pingWaiters.push(resolve));
    }
    socket.send("still alive");
    const [echo] = await take(1);
    return {
      pings,
      sameSid: socket.id === sid,
      readyState: socket.readyState,
      echo: echo.data,
      transport: socket.transport.name,
      closesSoFar: result.closes.length,
    };
  },
  async serverClose() {
    const transport = socket.transport.name;
    socket.send("close");
    await closed();
    return { transport, readyState: socket.readyState };
  },
  async clientClose() {
    const transport = socket.transport.name;
    socket.close();
    await closed();
    return { transport, readyState: socket.readyState };
  },
};

socket.on("open", async () => {
  result.sid = socket.id;
  result.transportAtOpen = socket.transport.name;
  if (cfg.steps[0] === "straddle") straddle = startStraddle();
  try {
    for (const name of cfg.steps) {
      result.steps[name] = await steps[name]();
    }
  } catch (err) {
    result.errors.push(`step failed: ${err && err.stack}`);
  }
  // Give a close that is not part of the steps no chance to be missed: report now.
  finish({ transportAtEnd: socket.transport ? socket.transport.name : null });
});
