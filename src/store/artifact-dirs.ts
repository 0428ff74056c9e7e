// Where artifacts live under `<data-dir>/artifacts/`: one folder per artifact, named after its id.

/** The folder name of an artifact id (`tc1:<hex>` -> `tc1-<hex>`, `tcl:<hex>` -> `tcl-<hex>`). */
export const dirName = (artifactId: string): string => artifactId.replace(':', '-');
