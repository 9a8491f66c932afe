import type { Attributes } from "@opentelemetry/api";
import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from "./attribute-names.js";

/**
 * `server.address` and `server.port` of a URL (semconv docs/registry/attributes/server.md):
 * the host without IPv6 brackets, and the explicit port or the scheme's default (443 for
 * `https:`, 80 otherwise). Empty attributes for a URL without a host.
 *
 * @throws TypeError if `url` is a string that is not an absolute URL.
 */
export function serverAddressAttributes(url: string | URL): Attributes {
  const parsed = typeof url === "string" ? new URL(url) : url;
  if (parsed.hostname === "") return {};
  const host = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const port = parsed.port !== "" ? Number(parsed.port) : parsed.protocol === "https:" ? 443 : 80;
  return { [ATTR_SERVER_ADDRESS]: host, [ATTR_SERVER_PORT]: port };
}

/**
 * `server.address` and `server.port` from the authority of a request URL
 * (`HandlerContext.url`, `http://127.0.0.1:8080/pkg.Service/Method`), without building a `URL`.
 * Empty attributes if the URL has no authority; never throws.
 */
export function authorityAttributes(url: string): Attributes {
  const start = url.indexOf("//");
  if (start < 0) return {};
  let end = url.indexOf("/", start + 2);
  if (end < 0) end = url.length;
  const authority = url.slice(start + 2, end);
  let host = authority;
  let port = "";
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    host = authority.slice(1, close);
    if (authority[close + 1] === ":") port = authority.slice(close + 2);
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      host = authority.slice(0, colon);
      port = authority.slice(colon + 1);
    }
  }
  if (host === "") return {};
  const portNumber = port !== "" ? Number(port) : url.startsWith("https:") ? 443 : 80;
  return Number.isInteger(portNumber)
    ? { [ATTR_SERVER_ADDRESS]: host, [ATTR_SERVER_PORT]: portNumber }
    : { [ATTR_SERVER_ADDRESS]: host };
}
