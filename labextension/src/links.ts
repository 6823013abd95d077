/**
 * Links to pages outside JupyterLab (a SageMaker console page). The kernel already keeps only `https://` URLs;
 * the scheme is checked again here, so a `javascript:` URL can never become a link, and every link opens in a new
 * tab without access to this page (`rel="noopener noreferrer"`). The label is text, never markup.
 */

/** `value` when it is an `https://` URL without whitespace or control characters, else null. */
export function safeUrl(value: unknown): string | null {
  if (typeof value !== 'string' || value.length <= 'https://'.length || value.length > 2048) {
    return null;
  }
  if (!value.toLowerCase().startsWith('https://') || /[\s\u0000-\u001f\u007f]/.test(value)) {
    return null;
  }
  return value;
}

/** An anchor to `url` that opens in a new tab, or null when the URL is not safe. */
export function externalLink(url: unknown, label: string, className: string): HTMLAnchorElement | null {
  const href = safeUrl(url);
  if (href === null) {
    return null;
  }
  const link = document.createElement('a');
  link.className = className;
  link.href = href;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  link.textContent = label;
  link.title = href;
  return link;
}
