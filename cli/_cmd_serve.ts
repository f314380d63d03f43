// `streamwire serve`: the demo server and its admin API until SIGINT or
// SIGTERM, then a graceful drain.

import { X509Certificate } from "node:crypto";
import { StreamwireError } from "../codec/error.ts";
import { CliError, type Command } from "./_command.ts";
import { jsonLogger } from "../rpc/logger.ts";
import { effectiveSettings, loadConfig, SERVE_USAGE } from "./config.ts";
import { runServer } from "./run_server.ts";
import { Cluster } from "../cluster/cluster.ts";
import { clusterChat } from "../cluster/_demo_methods.ts";
import { clusterAdminApp } from "../cluster/admin.ts";
import { connectBackplane } from "../cluster/connect_backplane.ts";

const [USAGE_LINE, ...HELP] = SERVE_USAGE.split("\n");

/** `streamwire serve [options]`. */
export const serveCommand: Command = {
  name: "serve",
  summary: "run the demo server and its admin API",
  usage: USAGE_LINE.replace(/^Usage: /, ""),
  help: HELP.join("\n").trimStart(),
  flags: {},
  positionals: [0, Infinity],
  ownFlags: true,
  async run({ positionals }, io) {
    let config;
    try {
      config = await loadConfig({
        args: positionals,
        env: io.env,
        warn: (message) => io.stderr.line(message),
      });
    } catch (error) {
      const e = StreamwireError.from(error);
      throw new CliError(e.codeName, e.message);
    }
    if (config === undefined) {
      io.stdout.line(SERVE_USAGE);
      return;
    }
    if (config.certFile !== undefined) {
      certificateWarning(config.certFile, io.stderr.line.bind(io.stderr));
    }
    // Log lines share standard error, and its batching, with the warnings.
    const logger = jsonLogger({ level: config.logLevel, write: (line) => io.stderr.line(line) });
    let running;
    try {
      running = runServer(config, { logger });
    } catch (error) {
      // A port in use, an unresolvable host, an unreadable TLS file.
      const e = StreamwireError.from(error);
      throw new CliError(e.codeName, e.message);
    }
    // Cluster: joins the backplane after the listeners are up; fails clearly if unreachable.
    let cluster: Cluster | undefined;
    if (config.cluster !== undefined) {
      try {
        const backplane = await connectBackplane(config.cluster);
        cluster = await Cluster.start(running.server, {
          backplane,
          nodeId: config.nodeId,
          address: running.addr,
        });
        clusterChat(running.server, cluster);
        const api = clusterAdminApp(cluster, { token: config.adminToken });
        running.mountAdmin("/cluster", (request) => api.fetch(request));
      } catch (error) {
        await running.shutdown();
        const e = StreamwireError.from(error);
        throw new CliError(e.codeName, e.message);
      }
    }
    io.stdout.line(
      `streamwire listening on ${running.addr}${config.token ? " (token required)" : ""}`,
    );
    if (running.wsAddr) io.stdout.line(`websocket on ${running.wsAddr}`);
    if (cluster) io.stdout.line(`cluster node ${cluster.nodeId}`);
    if (running.adminAddr) {
      io.stdout.line(
        `admin API on ${running.adminAddr}${config.adminToken ? " (token required)" : ""}`,
      );
      io.stdout.line(`dashboard on ${running.adminAddr}/`);
      // The browser demo needs the WebSocket port for its sessions.
      if (running.wsAddr) io.stdout.line(`demo page on ${running.adminAddr}/demo`);
    }
    logger.info("started", {
      addr: running.addr,
      wsAddr: running.wsAddr,
      adminAddr: running.adminAddr,
      settings: effectiveSettings(config),
    });
    await io.stdout.flush();
    if (!io.signal.aborted) {
      await new Promise((resolve) => io.signal.addEventListener("abort", resolve, { once: true }));
    }
    const reason = io.signal.reason;
    io.stdout.line(
      `${
        reason instanceof Error ? reason.message : "stopping"
      }: draining up to ${config.drainTimeoutMs} ms`,
    );
    await io.stdout.flush();
    logger.info("stopping", {
      reason: reason instanceof Error ? reason.message : undefined,
      drainTimeoutMs: config.drainTimeoutMs,
    });
    if (cluster) await cluster.shutdown({ deadlineMs: config.drainTimeoutMs });
    await running.shutdown();
    logger.info("stopped");
    await io.stderr.flush();
    io.stdout.line("streamwire stopped");
  },
};

/**
 * Warns about a certificate that TLS clients built on rustls (Deno's own
 * among them) refuse: a CA certificate used as the server's, which is what a
 * plain `openssl req -x509` makes. Problems reading it are left to listen().
 */
function certificateWarning(file: string, warn: (line: string) => void): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Deno.readTextFileSync(file));
  } catch {
    return;
  }
  if (cert.ca) {
    warn(
      `streamwire: warning: '${file}' is a CA certificate (what a plain 'openssl req -x509' ` +
        "makes); Deno and other rustls clients refuse it as a server's own. Make one with " +
        "-addext basicConstraints=critical,CA:FALSE -addext subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
  }
  if (cert.subjectAltName === undefined) {
    warn(`streamwire: warning: '${file}' has no subjectAltName; clients check the host against it`);
  }
}
