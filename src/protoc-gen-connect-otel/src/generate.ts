import type { DescService } from "@bufbuild/protobuf";
import type { GeneratedFile, ImportSymbol, Printable, Schema, Target } from "@bufbuild/protoplugin";
import { getComments } from "@bufbuild/protoplugin";
import type { Annotations } from "./annotations.js";
import { readAnnotations } from "./annotations.js";
import type { ExtractorPrinter } from "./extractor-code.js";
import { createExtractorPrinter } from "./extractor-code.js";
import { assertUniqueLocalNames } from "./local-names.js";
import type { PrintedFacts } from "./method-facts.js";
import { methodFacts, serviceNames } from "./method-facts.js";
import { checkFieldAnnotations } from "./recorded-fields.js";
import { RUNTIME_MODULE } from "./runtime-module.js";

/**
 * Writes one `<name>_otel.<ext>` per proto file that declares services, beside protoc-gen-es's
 * `<name>_pb.<ext>`; files without services get nothing. `target` selects TypeScript, JavaScript
 * or declarations; protoplugin applies `import_extension` and `js_import_style` to the imports.
 *
 * @throws Error if two methods of a service share a local name (see `assertUniqueLocalNames`).
 */
export function generate(schema: Schema, target: Target): void {
  const annotations = readAnnotations(schema.allFiles);
  for (const file of schema.files) {
    checkFieldAnnotations(file, annotations);
    if (file.services.length === 0) continue;
    assertUniqueLocalNames(file);
    const services = file.services.map((service) => ({
      service,
      facts: service.methods.map((method) => methodFacts(method, annotations)),
    }));
    const f = schema.generateFile(`${file.name}_otel.${target === "dts" ? "d.ts" : target}`);
    f.preamble(file);
    const extractors = createExtractorPrinter(f, target === "ts");
    const tables =
      target === "dts"
        ? []
        : services.map(({ service, facts }) => printedTable(f, service, facts, extractors, annotations));
    extractors.declarations();
    services.forEach(({ service }, i) => {
      printService(f, service, target, tables[i]);
    });
  }
}

/**
 * One service: its method table and the two factories (`ts`, `js`), or their declarations (`dts`).
 * Every exported declaration has an explicit type, also in `.d.ts` output.
 */
function printService(f: GeneratedFile, service: DescService, target: Target, table: Printable[] | undefined): void {
  const names = serviceNames(service);
  const desc = f.importSchema(service, target === "dts");
  const p = parameterNames(f, service);
  const sig =
    target === "js"
      ? { client: ["(", p.transport, ", ", p.options, ")"], server: ["(", p.impl, ", ", p.options, ")"] }
      : signatures(f, desc, p);
  if (table !== undefined) printMethodTable(f, service, target === "ts" ? desc : undefined, table);
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
function printMethodTable(
  f: GeneratedFile,
  service: DescService,
  desc: ImportSymbol | undefined,
  entries: Printable[],
): void {
  const names = serviceNames(service);
  f.print(f.jsDoc(`What the schema says of each method of ${service.typeName}, for the connect-otel runtime.`));
  if (desc)
    f.print("const ", names.table, ": ", f.import("ServiceTable", RUNTIME_MODULE, true), "<typeof ", desc, "> = {");
  else f.print("const ", names.table, " = {");
  for (const entry of entries) f.print(entry);
  f.print("};");
  f.print();
}

/**
 * The entries of a method table, one Printable per method: on one line when the method has only
 * name, kind and idempotency; one property per line when annotations add more.
 */
function printedTable(
  f: GeneratedFile,
  service: DescService,
  facts: readonly PrintedFacts[],
  extractors: ExtractorPrinter,
  annotations: Annotations,
): Printable[] {
  return service.methods.map((method, i) => {
    const m = facts[i] as PrintedFacts;
    const props: Printable[][] = [
      ["name: ", f.string(m.name)],
      ["kind: ", f.string(m.kind)],
      ["idempotency: ", f.string(m.idempotency)],
    ];
    if (!m.traced) props.push(["traced: false"]);
    if (m.serverErrorCodes !== undefined) {
      const codes = m.serverErrorCodes.map((code) => `${code} /* ${annotations.codeName(code)} */`);
      props.push([`serverErrorCodes: [${codes.join(", ")}]`]);
    }
    if (m.request.length > 0) props.push(["request: ", extractors.extractor(m.request)]);
    if (m.response.length > 0) props.push(["response: ", extractors.extractor(m.response)]);
    const key = propertyKey(method.localName);
    if (props.length === 3) return [`  ${key}: { `, ...join(props, ", "), " },"];
    return [`  ${key}: {\n`, ...props.flatMap((p) => ["    ", ...p, ",\n"]), "  },"];
  });
}

function join(parts: Printable[][], separator: string): Printable[] {
  return parts.flatMap((part, i) => (i === 0 ? part : [separator, ...part]));
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
      "<typeof ",
      desc,
      ">): ",
      connect("Client"),
      "<typeof ",
      desc,
      ">",
    ],
    server: [
      "(",
      p.impl,
      ": Partial<",
      impl,
      ">, ",
      p.options,
      "?: ",
      runtime("TracedServiceOptions"),
      "<typeof ",
      desc,
      ">): ",
      impl,
    ],
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
