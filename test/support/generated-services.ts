import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { CallOptions, Client, HandlerContext, ServiceImpl, Transport } from "@connectrpc/connect";
import type { TracedClientOptions, TracedServiceOptions } from "connect-otel";

/** One service of generated code: its descriptor from `<file>_pb` and its factories from `<file>_otel`. */
export interface GeneratedService {
  /** Proto file name without `.proto`, e.g. `corpus/many/v1/many`. */
  readonly file: string;
  readonly desc: DescService;
  /** Name under which `<file>_pb` exports the descriptor (`delete$` for a service named `delete`). */
  readonly pbExport: string;
  /** `createTraced<Service>Client` of `<file>_otel`. */
  readonly createClient: (transport: Transport, options?: TracedClientOptions) => Client<DescService>;
  /**
   * `trace<Service>` of `<file>_otel`, typed for implementations written without the generated
   * types (any object of handlers by local name).
   */
  readonly traceImpl: (impl: object, options?: TracedServiceOptions) => ServiceImpl<DescService>;
}

/**
 * Imports `<file>_pb.<ext>` and `<file>_otel.<ext>` below `genDir` for each of `files` (proto file
 * names without `.proto`) in this process (under vitest, `connect-otel` resolves to src/), and pairs
 * every service descriptor `_pb` exports with the two factories `_otel` exports for it.
 *
 * @throws Error naming the file if `_otel` lacks a factory of a service, or exports anything but
 *   `createTraced<Service>Client` and `trace<Service>` of the file's services.
 */
export async function loadGeneratedServices(
  genDir: string,
  files: readonly string[],
  ext: "ts" | "js",
): Promise<GeneratedService[]> {
  const found: GeneratedService[] = [];
  for (const file of files) {
    const load = (suffix: string) =>
      import(pathToFileURL(path.join(genDir, `${file}${suffix}.${ext}`)).href) as Promise<Record<string, unknown>>;
    const pb = await load("_pb");
    const otel = await load("_otel");
    const expected: string[] = [];
    for (const [pbExport, value] of Object.entries(pb)) {
      if (!isService(value)) continue;
      const names = { client: `createTraced${value.name}Client`, server: `trace${value.name}` };
      expected.push(names.client, names.server);
      const createClient = otel[names.client];
      const traceImpl = otel[names.server];
      if (typeof createClient !== "function" || typeof traceImpl !== "function") {
        throw new Error(`${file}_otel.${ext} does not export ${names.client} and ${names.server} functions`);
      }
      found.push({
        file,
        desc: value,
        pbExport,
        createClient: createClient as GeneratedService["createClient"],
        traceImpl: traceImpl as GeneratedService["traceImpl"],
      });
    }
    const exported = Object.keys(otel).sort();
    if (expected.length === 0 || exported.join() !== expected.sort().join()) {
      throw new Error(`${file}_otel.${ext} exports [${exported.join(", ")}], expected [${expected.join(", ")}]`);
    }
  }
  return found;
}

function isService(value: unknown): value is DescService {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "service";
}

/** Response header in which `echoImpl` names the method that handled a call. */
export const METHOD_HEADER = "x-corpus-method";

/**
 * An implementation of every method of `service`: each sets `METHOD_HEADER` to the method's proto
 * name and answers with empty messages of the output type: one for a unary response, two for a
 * server stream, one per request of a bidi stream. A client-streaming method reads all requests
 * and names their count in the header (`Method 2`). Methods are own data properties, also one
 * named `__proto__`.
 */
export function echoImpl(service: DescService): ServiceImpl<DescService> {
  const impl = {};
  for (const method of service.methods) {
    Object.defineProperty(impl, method.localName, {
      value: echoHandler(method),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return impl as ServiceImpl<DescService>;
}

function echoHandler(method: DescMethod): unknown {
  const reply = () => create(method.output);
  const mark = (ctx: HandlerContext, value = method.name) => ctx.responseHeader.set(METHOD_HEADER, value);
  switch (method.methodKind) {
    case "unary":
      return async (_req: unknown, ctx: HandlerContext) => {
        mark(ctx);
        return reply();
      };
    case "server_streaming":
      return async function* (_req: unknown, ctx: HandlerContext) {
        mark(ctx);
        yield reply();
        yield reply();
      };
    case "client_streaming":
      return async (reqs: AsyncIterable<unknown>, ctx: HandlerContext) => {
        let n = 0;
        for await (const _ of reqs) n++;
        mark(ctx, `${method.name} ${n}`);
        return reply();
      };
    case "bidi_streaming":
      return async function* (reqs: AsyncIterable<unknown>, ctx: HandlerContext) {
        mark(ctx);
        for await (const _ of reqs) yield reply();
      };
  }
}

/** What the client saw of one call made by `callMethod`. */
export interface CallResult {
  /** `METHOD_HEADER` of the response, `null` if absent. */
  readonly header: string | null;
  /** Number of response messages received. */
  readonly responses: number;
}

/**
 * Calls `method` through `client` (a connect client, traced or not) with empty requests: one for
 * unary and server-streaming methods, a stream of two for client-streaming and bidi methods; reads
 * every response. Rejects with the call's error.
 */
export async function callMethod(client: Client<DescService>, method: DescMethod, options: CallOptions = {}) {
  let header: string | null = null;
  const callOptions: CallOptions = {
    ...options,
    onHeader: (h) => {
      header = h.get(METHOD_HEADER);
    },
  };
  const fn = (client as unknown as Record<string, (input: unknown, options: CallOptions) => unknown>)[method.localName];
  if (typeof fn !== "function") throw new Error(`the client has no function ${method.localName} for ${method}`);
  const two = async function* () {
    yield {};
    yield {};
  };
  let responses = 0;
  switch (method.methodKind) {
    case "unary":
      await fn.call(client, {}, callOptions);
      responses = 1;
      break;
    case "client_streaming":
      await fn.call(client, two(), callOptions);
      responses = 1;
      break;
    case "server_streaming":
    case "bidi_streaming": {
      const input = method.methodKind === "server_streaming" ? {} : two();
      for await (const _ of fn.call(client, input, callOptions) as AsyncIterable<unknown>) responses++;
      break;
    }
  }
  return { header, responses } satisfies CallResult as CallResult;
}

/** What `echoImpl` answers `callMethod` with: header and number of responses. */
export function expectedEcho(method: DescMethod): CallResult {
  switch (method.methodKind) {
    case "unary":
      return { header: method.name, responses: 1 };
    case "server_streaming":
      return { header: method.name, responses: 2 };
    case "client_streaming":
      return { header: `${method.name} 2`, responses: 1 };
    case "bidi_streaming":
      return { header: method.name, responses: 2 };
  }
}
