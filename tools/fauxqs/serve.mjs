// serve.mjs — run the fauxqs SQS emulator on 127.0.0.1 only, for tests.
//
// Usage: node serve.mjs [--port N | N] [--exit-on-stdin-eof]
//
//   port               TCP port on 127.0.0.1; 0 (the default) lets the kernel
//                      pick a free one. Also read from $FAUXQS_PORT.
//   --exit-on-stdin-eof  shut down when stdin reaches EOF, so the emulator
//                      dies with the process that spawned it (the Go test
//                      helper passes a pipe and never writes to it).
//   FAUXQS_LOGGER=true  log every request (Fastify/pino JSON) to stderr.
//
// When it is accepting connections it prints exactly one line to stdout:
//
//   fauxqs listening endpoint=http://127.0.0.1:PORT port=PORT version=1.9.2
//
// and nothing else is ever written to stdout. SIGTERM/SIGINT close the server
// (open long polls are cut) and exit 0.
//
// Three deliberate differences from `npx fauxqs`:
//   * it binds 127.0.0.1, never 0.0.0.0;
//   * queue URLs are http://<Host header of the CreateQueue request>/000000000000/<name>
//     (e.g. http://127.0.0.1:PORT/000000000000/q) instead of fauxqs's default
//     http://sqs.<region>.localhost:PORT/..., which does not resolve on hosts
//     without *.localhost DNS. fauxqs's `host` option cannot express this
//     (it always yields sqs.<region>.<host>), so we hand buildApp our own
//     SqsStore with host "" — that class is internal to fauxqs, hence the
//     import by path; fauxqs is pinned to 1.9.2 exactly.
//   * before every request, expired visibility timeouts and elapsed delays are
//     applied to all queues. Plain fauxqs does that only inside ReceiveMessage,
//     so GetQueueAttributes would keep counting a message whose visibility
//     timeout has run out as NotVisible until somebody polls that queue.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { buildApp } from "fauxqs";

const HOST = "127.0.0.1";

const appUrl = import.meta.resolve("fauxqs"); // .../node_modules/fauxqs/dist/app.js
const { SqsStore } = await import(new URL("./sqs/sqsStore.js", appUrl).href);
const { version } = JSON.parse(readFileSync(new URL("../package.json", appUrl), "utf8"));

function fail(msg) {
	process.stderr.write(`serve.mjs: ${msg}\n`);
	process.exit(2);
}

let args;
try {
	args = parseArgs({
		allowPositionals: true,
		options: {
			port: { type: "string" },
			"exit-on-stdin-eof": { type: "boolean", default: false },
		},
	});
} catch (err) {
	fail(err.message);
}
if (args.positionals.length > 1) fail(`unexpected arguments: ${args.positionals.join(" ")}`);
const portArg = args.values.port ?? args.positionals[0] ?? process.env.FAUXQS_PORT ?? "0";
if (!/^\d+$/.test(portArg) || Number(portArg) > 65535) fail(`invalid port ${JSON.stringify(portArg)}`);

const sqsStore = new SqsStore();
sqsStore.host = ""; // queue URL host := request Host header (see above)

const logger = process.env.FAUXQS_LOGGER === "true" ? { stream: process.stderr } : false;
const app = buildApp({ logger, stores: { sqsStore } });
app.addHook("onRequest", (_req, _reply, done) => {
	sqsStore.processAllTimers();
	done();
});

let closing = false;
async function shutdown(reason) {
	if (closing) {
		process.exit(1); // second signal: give up on a graceful close
	}
	closing = true;
	process.stderr.write(`serve.mjs: ${reason}, shutting down\n`);
	setTimeout(() => process.exit(1), 5000).unref();
	try {
		await app.close();
	} catch (err) {
		process.stderr.write(`serve.mjs: close: ${err?.stack ?? err}\n`);
		process.exit(1);
	}
	process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
if (args.values["exit-on-stdin-eof"]) {
	process.stdin.on("end", () => shutdown("stdin closed"));
	process.stdin.on("error", () => shutdown("stdin error"));
	process.stdin.resume();
}

try {
	await app.listen({ host: HOST, port: Number(portArg) });
} catch (err) {
	process.stderr.write(`serve.mjs: listen on ${HOST}:${portArg}: ${err?.message ?? err}\n`);
	process.exit(1);
}
const { port } = app.server.address();
process.stdout.write(`fauxqs listening endpoint=http://${HOST}:${port} port=${port} version=${version}\n`);
