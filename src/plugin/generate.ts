import type { DescService } from "@bufbuild/protobuf";
import type { GeneratedFile, ImportSymbol, Printable, Schema, Target } from "@bufbuild/protoplugin";
import { getComments } from "@bufbuild/protoplugin";
import { assertUniqueLocalNames } from "./local-names.js";
import { methodFacts, serviceNames } from "./method-facts.js";
import { RUNTIME_MODULE } from "./runtime-module.js";

/**
 * Writes one `<name>_otel.<ext>` per proto file that declares services, beside protoc-gen-es's
 * `<name>_pb.<ext>`; files without services get nothing. `target` selects TypeScript, JavaScript
 * or declarations; protoplugin applies `import_extension` and `js_import_style` to the imports.
 *
 * @throws Error if two methods of a service share a local name (see `assertUniqueLocalNames`).
 */
export function generate(schema: Schema, target: Target): void {
  for (const file of schema.files) {
    if (file.services.length === 0) continue;
    assertUniqueLocalNames(file);
    const f = schema.generateFile(`${file.name}_otel.${target === "dts" ? "d.ts" : target}`);
    f.preamble(file);
    for (const service of file.services) printService(f, service, target);
  }
}

/**
 * One service: its method table and the two factories (`ts`, `js`), or their declarations (`dts`).
 * Every exported declaration has an explicit type, also in `.d.ts` output.
 */
function printService(f: GeneratedFile, service: DescService, target: Target): void {
  const names = serviceNames(service);
  const desc = f.importSchema(service, target === "dts");
  const p = parameterNames(f, service);
  const sig =
    target === "js"
      ? { client: ["(", p.transport, ", ", p.options, ")"], server: ["(", p.impl, ", ", p.options, ")"] }
      : signatures(f, desc, p);
  if (target !== "dts") printMethodTable(f, service, target === "ts" ? desc : undefined);
  const body = (runtimeFn: string, arg: Printable): Printable[] =>
    target === "dts"
      ? [";"]
      : [
          " {\n  return ",
          f.import(runtimeFn, RUNTIME_MODULE),
          "(",
          desc,
          ", ",
          names.table,
          ", ",
          arg,
          ", ",
          p.options,
          ");\n}",
        ];
  const declaration = target === "dts" ? "declare function" : "function";
  f.print(f.jsDoc(clientDoc(service)));
  f.print(f.export(declaration, names.client), sig.client, ...body("createTracedClient", p.transport));
  f.print();
  f.print(f.jsDoc(serverDoc(service)));
  f.print(f.export(declaration, names.server), sig.server, ...body("traceService", p.impl));
  f.print();
}

/** The method table of a service, typed `ServiceTable<typeof Service>` when `desc` is given. */
function printMethodTable(f: GeneratedFile, service: DescService, desc: ImportSymbol | undefined): void {
  const names = serviceNames(service);
  f.print(f.jsDoc(`What the schema says of each method of ${service.typeName}, for the connect-otel runtime.`));
  if (desc)
    f.print("const ", names.table, ": ", f.import("ServiceTable", RUNTIME_MODULE, true), "<typeof ", desc, "> = {");
  else f.print("const ", names.table, " = {");
  for (const method of service.methods) {
    const { name, kind, idempotency } = methodFacts(method);
    f.print(
      `  ${propertyKey(method.localName)}: { name: `,
      f.string(name),
      ", kind: ",
      f.string(kind),
      ", idempotency: ",
      f.string(idempotency),
      " },",
    );
  }
  f.print("};");
  f.print();
}

/** Typed parameter lists and return types of the client factory and the service wrapper. */
function signatures(f: GeneratedFile, desc: ImportSymbol, p: ParameterNames): { client: Printable; server: Printable } {
  const connect = (name: string) => f.import(name, "@connectrpc/connect", true);
  const runtime = (name: string) => f.import(name, RUNTIME_MODULE, true);
  const impl = [connect("ServiceImpl"), "<typeof ", desc, ">"];
  return {
    client: [
      "(",
      p.transport,
      ": ",
      connect("Transport"),
      ", ",
      p.options,
      "?: ",
      runtime("TracedClientOptions"),
      "): ",
      connect("Client"),
      "<typeof ",
      desc,
      ">",
    ],
    server: ["(", p.impl, ": Partial<", impl, ">, ", p.options, "?: ", runtime("TracedServiceOptions"), "): ", impl],
  };
}

/** The factories' parameter names, as symbols of the generated file itself. */
interface ParameterNames {
  readonly transport: ImportSymbol;
  readonly impl: ImportSymbol;
  readonly options: ImportSymbol;
}

/**
 * `transport`, `impl` and `options` as symbols declared in the generated file itself (an import
 * symbol whose path is the file's own import path is never imported). protoplugin counts them as
 * taken, so it imports a service descriptor of the same name (`service transport {}`) under an
 * alias (`transport$1`) instead of letting the parameter shadow it inside the factory.
 */
function parameterNames(f: GeneratedFile, service: DescService): ParameterNames {
  // protoplugin's import path of `<name>_otel.{ts,js,d.ts}`: `./<name>_otel.js`
  const self = `./${service.file.name}_otel.js`;
  return { transport: f.import("transport", self), impl: f.import("impl", self), options: f.import("options", self) };
}

/**
 * An object literal key: bare when it is an identifier, quoted otherwise. `__proto__` is computed
 * (`["__proto__"]`): bare or quoted, it sets the object's prototype instead of defining a property
 * (ECMA-262, PropertyDefinitionEvaluation, `__proto__` property names in object initializers).
 */
function propertyKey(name: string): string {
  if (name === "__proto__") return `[${JSON.stringify(name)}]`;
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
}

function clientDoc(service: DescService): string {
  return [
    ...protoComments(service),
    `Creates a traced client of ${service.typeName}: every call runs in a CLIENT span named`,
    "`package.Service/Method`, carries the span's context in its request headers (W3C trace context",
    "by default), records an `rpc.message` event per message and ends with the call's status code.",
    "Give `options.baseUrl` and `options.protocol` the transport's values to record",
    "`server.address`, `server.port` and `rpc.system.name` at span start.",
    "",
    ...serviceTags(service),
  ].join("\n");
}

function serverDoc(service: DescService): string {
  return [
    ...protoComments(service),
    `Wraps an implementation of ${service.typeName} for \`router.service(${service.name}, ...)\`: every`,
    "method, also those the implementation leaves out (UNIMPLEMENTED), runs in a SERVER span that",
    "continues the caller's trace from the request headers; handler code, streaming handlers",
    "included, runs with the span active; per-message events and the status code are recorded.",
    "",
    ...serviceTags(service),
  ].join("\n");
}

/** The service's leading and trailing proto comments, as lines, followed by a blank line. */
function protoComments(service: DescService): string[] {
  const comments = getComments(service);
  const text = [comments.leading, comments.trailing]
    .filter((c): c is string => c !== undefined && c.trim() !== "")
    .map((c) =>
      c
        .replace(/\n$/, "")
        .split("\n")
        .map((line) => (line.startsWith(" ") ? line.slice(1) : line))
        .join("\n"),
    )
    .join("\n\n");
  return text === "" ? [] : [...text.split("\n"), ""];
}

function serviceTags(service: DescService): string[] {
  const tags = [`@generated from service ${service.typeName}`];
  if (service.deprecated || service.file.deprecated) tags.push("@deprecated");
  return tags;
}
