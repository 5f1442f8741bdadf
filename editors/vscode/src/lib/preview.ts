// What a dismissed picker leaves behind: the editors it opened only to preview results.

export interface TabView {
  /** The file or notebook the tab shows (a `Uri.toString()`), undefined for other tabs (settings, diffs...). */
  uri: string | undefined;
  isPreview: boolean;
}

/**
 * The tabs to close when a picker is dismissed (Escape) after previewing results: preview tabs of files it showed
 * that had no tab before it opened, as VS Code's own Quick Open and Go to Symbol do. A tab that was open before,
 * or that the user pinned meanwhile (Open to the Side opens pinned), stays.
 */
export function transientTabs<T extends TabView>(tabs: readonly T[], openBefore: ReadonlySet<string>, previewed: ReadonlySet<string>): T[] {
  return tabs.filter((t) => t.isPreview && t.uri !== undefined && previewed.has(t.uri) && !openBefore.has(t.uri));
}
