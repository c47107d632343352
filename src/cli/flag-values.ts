/**
 * The value syntaxes of the controller's flags: Go-style durations and listen addresses. Pure; each parser
 * throws an Error with a one-line message that the flag parser prefixes with the flag's name.
 */

export interface AdminAddress {
  /** Host to listen on ("0.0.0.0", "::", "127.0.0.1", a name); IPv6 without brackets. */
  host: string;
  port: number;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go-style duration (`500ms`, `9s`, `1m30s`, `1.5h`, `0`) into milliseconds. Throws an Error with a
 * one-line message when it is not one. Negative durations are refused.
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let ms = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m || m[1] === undefined || m[2] === undefined) {
      throw new Error(`invalid duration "${text}": expected e.g. 500ms, 9s, 1m30s`);
    }
    ms += Number(m[1]) * (DURATION_UNITS[m[2]] ?? Number.NaN);
    pos = re.lastIndex;
  }
  if (s === "" || !Number.isFinite(ms))
    throw new Error(`invalid duration "${text}": expected e.g. 500ms, 9s, 1m30s`);
  return ms;
}

/** Parses `host:port`, `[v6]:port` or `:port` (all interfaces, IPv4). Throws on a bad address. */
export function parseAddress(text: string): AdminAddress {
  const bad = (why: string) =>
    new Error(`invalid address "${text}": ${why} (expected host:port, e.g. 0.0.0.0:8080 or [::]:8080)`);
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") throw bad("unclosed [ or missing :port");
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!/^[0-9A-Fa-f:.]+(%[\w.-]+)?$/.test(host) || !host.includes(":"))
      throw bad(`"${host}" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw bad("missing :port");
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) throw bad("an IPv6 host must be in brackets");
    if (host === "") host = "0.0.0.0";
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host))
      throw bad(`"${host}" is not a host name or address`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(`port "${portText}" is not 0-65535`);
  return { host, port: Number(portText) };
}

/** A Lease name: a lower-case DNS subdomain. */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A namespace name: a DNS label. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
