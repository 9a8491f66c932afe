import type { Attributes } from "@opentelemetry/api";
import type { MethodPlan, RpcSystem } from "./method-plan.js";
import { authorityAttributes } from "./server-address.js";

/** Most authorities remembered per method; past this the memory starts over. */
const MAX_AUTHORITIES = 32;
const SLASH = 0x2f;

/**
 * The attributes a server span of one method starts with before the call's own (request fields,
 * headers, deadline): the method's, and `server.address`/`server.port` from the request URL's
 * authority (semconv rpc-spans.md, server attributes). One shared object per RPC system and origin
 * (`http://host:port`), built once: a server is reached under few authorities. At most 32 are
 * kept per method, so a caller that varies the Host header cannot grow memory. The origin of the
 * method's last call is checked first, without allocating. Never mutate a result.
 */
export class ServerStartAttributes {
  private readonly byKey = new Map<string, Attributes>();
  private lastSystem: RpcSystem | undefined;
  /** `http://host:port` of the last call's URL. */
  private lastOrigin = "";
  private lastAttributes: Attributes | undefined;

  constructor(private readonly plan: MethodPlan) {}

  /** The start attributes for a call of `system` to `url` (connect's `HandlerContext.url`). */
  get(system: RpcSystem, url: string): Attributes {
    const origin = this.lastOrigin;
    if (
      this.lastAttributes !== undefined &&
      this.lastSystem === system &&
      url.startsWith(origin) &&
      (url.length === origin.length || url.charCodeAt(origin.length) === SLASH)
    ) {
      return this.lastAttributes;
    }
    const slash = url.indexOf("/", url.indexOf("//") + 2);
    const urlOrigin = slash < 0 ? url : url.slice(0, slash);
    const key = `${system} ${urlOrigin}`;
    let attributes = this.byKey.get(key);
    if (attributes === undefined) {
      if (this.byKey.size >= MAX_AUTHORITIES) this.byKey.clear();
      attributes = { ...this.plan.startAttributes[system], ...authorityAttributes(url) };
      this.byKey.set(key, attributes);
    }
    this.lastSystem = system;
    this.lastOrigin = urlOrigin;
    this.lastAttributes = attributes;
    return attributes;
  }
}
