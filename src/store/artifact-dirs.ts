// Where artifacts live under `<data-dir>/artifacts/`: one folder per artifact, named after its id.

/** The folder name of an artifact id (`tc1:<hex>` -> `tc1-<hex>`, `tcl:<hex>` -> `tcl-<hex>`). */
export const dirName = (artifactId: string): string => artifactId.replace(':', '-');

/** Folder names of stored (`tc1-`) and lazy (`tcl-`) artifacts. */
export const ARTIFACT_DIR = /^tc(1|l)-[0-9a-f]{64}$/;
