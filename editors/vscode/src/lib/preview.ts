// What a dismissed picker leaves behind: the editors it opened only to preview results.

export interface TabView {
  /** The file or notebook the tab shows (a `Uri.toString()`), undefined for other tabs (settings, diffs...). */
  uri: string | undefined;
  /** Its editor group (`viewColumn`): a file open in another group gets a tab of its own in the previewing one. */
  group: number;
  isPreview: boolean;
}

/** A tab's identity across the picker's life: its group and what it shows. */
export function tabKey(t: TabView): string {
  return `${t.group} ${t.uri ?? ''}`;
}

/**
 * The tabs to close when a picker is dismissed (Escape) after previewing results: preview tabs of files it showed
 * that had no tab in that group before it opened, as VS Code's own Quick Open and Go to Symbol do. A tab that was
 * open before, or that the user pinned meanwhile (Open to the Side opens pinned), stays.
 */
export function transientTabs<T extends TabView>(tabs: readonly T[], openBefore: ReadonlySet<string>, previewed: ReadonlySet<string>): T[] {
  return tabs.filter((t) => t.isPreview && t.uri !== undefined && previewed.has(t.uri) && !openBefore.has(tabKey(t)));
}
