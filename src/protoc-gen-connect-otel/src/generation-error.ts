import type { DescFile } from "@bufbuild/protobuf";

/**
 * An error that stops generation, with a one-line message `<file>: <element>: <problem>`, for
 * example `user/v1/user.proto: field user.v1.User.email: ...`. protoplugin prints it after the
 * plugin's name and buf after the plugin's, so the user reads one line that names what to fix.
 */
export class GenerationError extends Error {
  override name = "GenerationError";

  /**
   * @param file - the proto file that holds the element
   * @param element - kind and fully-qualified name, `field user.v1.User.email`
   * @param problem - what is wrong, lowercase, no trailing period
   */
  constructor(file: DescFile, element: string, problem: string) {
    super(`${file.proto.name}: ${element}: ${problem}`.replace(/\s*\n\s*/g, " "));
  }
}
