import type { DescExtension, DescField, DescFile, DescMethod, DescService } from "@bufbuild/protobuf";
import { getOption, hasOption } from "@bufbuild/protobuf";

/** Package of the options proto that this package ships (`proto/connectotel/v1/options.proto`). */
export const OPTIONS_PACKAGE = "connectotel.v1";

/** `(connectotel.v1.field)`: what to record of a field. */
export interface FieldAnnotation {
  /** Span attribute key, `app.user.id`; empty when not set. */
  readonly attribute: string;
}

/** `(connectotel.v1.method)`: how to trace a method. */
export interface MethodAnnotation {
  readonly untraced: boolean;
  /** gRPC status code numbers (`connectotel.v1.Code`) that make the server span an Error. */
  readonly serverErrorCodes: readonly number[];
}

/** `(connectotel.v1.service)`: how to trace a service. */
export interface ServiceAnnotation {
  readonly untraced: boolean;
}

/**
 * Reads the connect-otel annotations of descriptors. The generator has no compiled copy of the
 * options proto: it finds the extensions in the files of the request (every file that a file to
 * generate imports is in it), so the annotations are read with the options proto the user's schema
 * was compiled against. A schema that does not import the options proto has no annotations.
 */
export interface Annotations {
  /** The field's (or extension's) annotation, or undefined if it has none. */
  field(field: DescField | DescExtension): FieldAnnotation | undefined;
  /** The method's annotation, or undefined if it has none. */
  method(method: DescMethod): MethodAnnotation | undefined;
  /** The service's annotation, or undefined if it has none. */
  service(service: DescService): ServiceAnnotation | undefined;
  /**
   * The gRPC status name of a `connectotel.v1.Code` number, from the enum of the options proto
   * (`CODE_NOT_FOUND` gives `NOT_FOUND`), or the number as a string if the enum has no such value.
   */
  codeName(code: number): string;
}

/** The annotations reader of a request's files (protoplugin's `Schema.allFiles`). */
export function readAnnotations(allFiles: readonly DescFile[]): Annotations {
  const find = (name: string): DescExtension | undefined => {
    const typeName = `${OPTIONS_PACKAGE}.${name}`;
    for (const file of allFiles) {
      if (file.proto.package !== OPTIONS_PACKAGE) continue;
      const found = file.extensions.find((ext) => ext.typeName === typeName);
      if (found) return found;
    }
    return undefined;
  };
  const fieldExt = find("field");
  const methodExt = find("method");
  const serviceExt = find("service");
  const codes = allFiles
    .filter((file) => file.proto.package === OPTIONS_PACKAGE)
    .flatMap((file) => file.enums)
    .find((e) => e.typeName === `${OPTIONS_PACKAGE}.Code`);
  return {
    codeName: (code) => codes?.value[code]?.name.replace(/^CODE_/, "") ?? String(code),
    field: (field) => option<FieldAnnotation>(field, fieldExt),
    method: (method) => option<MethodAnnotation>(method, methodExt),
    service: (service) => option<ServiceAnnotation>(service, serviceExt),
  };
}

/**
 * The value of a message-typed option as a plain object with the fields' local names (a protobuf-es
 * v2 message is one), or undefined when the element does not carry the option.
 */
function option<T>(
  element: DescField | DescExtension | DescMethod | DescService,
  ext: DescExtension | undefined,
): T | undefined {
  if (ext === undefined) return undefined;
  // The extension comes from the request, so its extendee type is only known at run time.
  const e = ext as never;
  if (!hasOption(element as never, e)) return undefined;
  return getOption(element as never, e) as T;
}
