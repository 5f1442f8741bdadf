// Plain data shapes of the Needle language server contract (see issue 5 / docs).
// No `vscode` import here: everything under src/lib is unit-tested with node's test runner.

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** Where a hit in a Jupyter notebook sits in it: the cell (0-based, as the notebook editor counts cells) and
 * the lines in that cell's source (whole lines: the end is the start of the line after the last). */
export interface CellLocation {
  index: number;
  range: LspRange;
}

/** One hit of `needle.search` / `needle.similar`. Lines are 0-based (LSP). */
export interface SearchResult {
  uri: string;
  range: LspRange; // in the file's text (a notebook's: its .ipynb JSON)
  name: string;
  kind: string;
  language: string;
  score: number; // cosine of query and code (the server's absolute score)
  weak: boolean; // below the server's "good match" line
  snippet: string;
  cell?: CellLocation; // a hit in a notebook
}

export interface FolderStatus {
  root: string;
  name?: string;
  message?: string;
  indexDir?: string;
  model?: string;
  files?: number;
  chunks?: number;
  state?: string;
  lastUpdate?: string | number | null;
  progress?: FolderProgress; // while indexing
  learnedFrom?: number; // open events the folder's query adapter was fitted on (when searches use it)
  skipped?: Record<string, number>; // files left out, by reason ("excluded", "too large", ...)
}

/** How far a folder's indexing got (`needle.status` → folders[].progress). */
export interface FolderProgress {
  filesDone: number;
  filesTotal: number;
  chunksEmbedded: number;
  chunksToEmbed: number;
}

/** Answer of `needle.status`. */
export interface IndexStatus {
  state: string; // "indexing" | "ready" | "partial" (a folder's indexing was cancelled) | "none" (nothing indexed)
  folders: FolderStatus[];
  message?: string; // why, for "partial" and "none"
}

/** A workspace folder as the pure modules see it. */
export interface Folder {
  name: string;
  uri: string; // file:///...
}

/** Last `$/progress` value seen for the indexing token. */
export interface ProgressInfo {
  title?: string;
  message?: string;
  percentage?: number;
  /** The server lets this one be cancelled (`window/workDoneProgress/cancel`). */
  cancellable?: boolean;
  /** The progress token, as the server sent it (a string or a number). */
  token?: string | number;
}
