/** The module that generated code imports the runtime from: this package's main entry point. */
export const RUNTIME_MODULE = "connect-otel";
