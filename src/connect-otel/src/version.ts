/** This package's version, the instrumentation scope version of its spans and the plugin's version. */
export const VERSION = "0.1.0";
