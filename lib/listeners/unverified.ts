/** An https:// upstream whose certificate the edge accepts without checking it (no imports: the CLI loads this at start). */
export function unverifiedUpstream(l: { upstreamUrl: string | null; upstreamTlsVerify: boolean }): boolean {
  return !l.upstreamTlsVerify && Boolean(l.upstreamUrl?.startsWith("https:"));
}
