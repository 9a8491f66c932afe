/** What a consumer asserts about the generated factories of one service. */
export interface ServiceTypeCheck {
  /** Module specifier of `<file>_otel` as the consumer imports it, e.g. `./gen/a/v1/a_otel.js`. */
  readonly otel: string;
  /** The service's proto name (`Foo` → `createTracedFooClient`, `traceFoo`). */
  readonly service: string;
  /** protobuf-es local names of its methods: exactly the keys of its client. */
  readonly localNames: readonly string[];
  /**
   * `_pb` module specifier and export name of the service descriptor: when given, the factories'
   * types must name exactly that descriptor; otherwise the descriptor is inferred from the client
   * factory and only the two factories' agreement and the method keys are checked.
   */
  readonly pb?: { readonly specifier: string; readonly exportName: string };
}

/**
 * Source lines that declare `Equal<A, B>` (true iff the two types are identical) and
 * `assertType<T extends true>()`, for generated consumers that fail to compile when a type is wrong.
 */
export const TYPE_EQUALITY_PRELUDE: readonly string[] = [
  "type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;",
  "function assertType<T extends true>(): T | undefined {",
  "  return undefined;",
  "}",
];

/**
 * TypeScript source of a consumer that fails to compile unless, for every check, the generated
 * `createTraced<Service>Client` is exactly `(transport: Transport, options?:
 * TracedClientOptions<S>) => Client<S>`, `trace<Service>` is exactly `(impl:
 * Partial<ServiceImpl<S>>, options?: TracedServiceOptions<S>) => ServiceImpl<S>`, and the keys of `Client<S>` are exactly the local
 * names. Generated names are reached by indexed access on type-only namespace imports, so any
 * proto name works, reserved words and `__proto__` included.
 */
export function typeAssertionSource(checks: readonly ServiceTypeCheck[]): string {
  const lines = [
    `import type { DescService } from "@bufbuild/protobuf";`,
    `import type { Client, ServiceImpl, Transport } from "@connectrpc/connect";`,
    `import type { TracedClientOptions, TracedServiceOptions } from "connect-otel";`,
  ];
  const modules = new Map<string, string>();
  const alias = (specifier: string): string => {
    let name = modules.get(specifier);
    if (name === undefined) {
      name = `m${modules.size}`;
      modules.set(specifier, name);
      lines.push(`import type * as ${name} from ${JSON.stringify(specifier)};`);
    }
    return name;
  };
  const body: string[] = [];
  for (const check of checks) {
    const otel = alias(check.otel);
    const client = `(typeof ${otel})[${JSON.stringify(`createTraced${check.service}Client`)}]`;
    const server = `(typeof ${otel})[${JSON.stringify(`trace${check.service}`)}]`;
    const service =
      check.pb === undefined
        ? `ServiceOf<${client}>`
        : `(typeof ${alias(check.pb.specifier)})[${JSON.stringify(check.pb.exportName)}]`;
    const keys = check.localNames.length === 0 ? "never" : check.localNames.map((n) => JSON.stringify(n)).join(" | ");
    body.push(
      `// ${check.otel}: ${check.service}`,
      `assertType<Equal<${client}, ClientFactory<${service}>>>();`,
      `assertType<Equal<${server}, ServerFactory<${service}>>>();`,
      `assertType<Equal<keyof Client<${service}>, ${keys}>>();`,
    );
  }
  return `${[
    ...lines,
    "",
    ...TYPE_EQUALITY_PRELUDE,
    "type ClientFactory<S extends DescService> = (",
    "  transport: Transport,",
    "  options?: TracedClientOptions<S>,",
    ") => Client<S>;",
    "type ServerFactory<S extends DescService> = (",
    "  impl: Partial<ServiceImpl<S>>,",
    "  options?: TracedServiceOptions<S>,",
    ") => ServiceImpl<S>;",
    "type ServiceOf<F> = F extends ClientFactory<infer S extends DescService> ? S : never;",
    "",
    ...body,
  ].join("\n")}\n`;
}
