// Starts Portkey's gateway bound to 127.0.0.1 only (its server listens on every interface
// otherwise). Usage: node portkey_loopback.mjs <path to build/start-server.js> --port=N --headless
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // serve({port}) calls listen(port, undefined, callback): give it the loopback host.
  if (typeof args[0] === "number" && (args[1] === undefined || typeof args[1] === "function")) {
    args.splice(1, args[1] === undefined ? 1 : 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};

const [entry, ...rest] = process.argv.slice(2);
process.argv = [process.argv[0], entry, ...rest];
await import(pathToFileURL(path.resolve(entry)).href);
