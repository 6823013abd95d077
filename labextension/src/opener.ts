/**
 * How a link to a file written by the kernel (an exported definition) opens in JupyterLab.
 * The plugin sets it at activation; views only call `openFile`.
 */
type Opener = (path: string) => void;

let opener: Opener | null = null;

export function setOpener(open: Opener): void {
  opener = open;
}

/** Open `path` (relative to the server root) in JupyterLab; returns false when no opener is set. */
export function openFile(path: string): boolean {
  if (opener === null) {
    return false;
  }
  opener(path);
  return true;
}
