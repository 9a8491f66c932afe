/**
 * Where the demo's processes listen and whom they call, from environment variables. The defaults
 * are the course system's fixed ports on loopback; the demo passes ephemeral ones.
 */

/** Default ports of the course system. */
export const DEFAULT_PORTS = {
  gateway: 8080,
  userService: 50052,
  paymentService: 50053,
} as const;

/** Loopback address every process of the demo listens on. */
export const LOOPBACK = "127.0.0.1";

/**
 * Reads a TCP port from the environment.
 *
 * @param name the variable, e.g. `GATEWAY_PORT`
 * @param fallback the port when the variable is unset or empty
 * @throws {RangeError} when the value is not an integer in 0..65535
 */
export function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") {
    return fallback;
  }
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`${name} is not a port: ${JSON.stringify(raw)}`);
  }
  return port;
}

/**
 * Reads a base URL (`http://host:port`) from the environment.
 *
 * @param name the variable, e.g. `USER_SERVICE_URL`
 * @param fallback the URL when the variable is unset or empty
 * @throws {TypeError} when the value is not an absolute http(s) URL
 */
export function urlFromEnv(name: string, fallback: string): string {
  const raw = process.env[name];
  if (raw === undefined || raw === "") {
    return fallback;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`${name} is not a url: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`${name} is not an http url: ${JSON.stringify(raw)}`);
  }
  return raw.replace(/\/+$/, "");
}

/** The base URL of a loopback service, `http://127.0.0.1:<port>`. */
export function loopbackUrl(port: number): string {
  return `http://${LOOPBACK}:${port}`;
}
