/**
 * The docsrag chat for a Docusaurus site: ChatKit's widget against a docsrag backend.
 *
 * ChatKit's web component (`<openai-chatkit>`) is loaded from OpenAI's CDN by a script tag the
 * site adds (see README.md); this component configures it through `@openai/chatkit-react`.
 * Render it in the browser only (Docusaurus `BrowserOnly`): it uses `window` and localStorage.
 *
 * Every ChatKit request also carries the page the visitor is reading (`x-docs-page-url`), so the
 * backend answers from that page's docs version and locale.
 */
import {ChatKit, useChatKit} from '@openai/chatkit-react';
import type {StartScreenPrompt} from '@openai/chatkit-react';
import {useEffect, useMemo, useState} from 'react';
import type {CSSProperties} from 'react';

import {createVisitorFetch, getVisitorToken} from './visitorSession';

/** The request header that tells the backend which page (docs version, locale) the visitor reads. */
export const PAGE_URL_HEADER = 'x-docs-page-url';

/**
 * The page the visitor is reading right now, as an absolute URL without its `#fragment`.
 *
 * Read at request time, never cached: Docusaurus navigates client-side (the URL changes without a
 * reload and the chat stays mounted), so a value captured at mount would go stale.
 */
export function currentPageUrl(): string {
  const url = new URL(window.location.href);
  url.hash = '';
  return url.href;
}

/** Wraps a `fetch` so each request carries the current page URL in `x-docs-page-url`. */
export function withPageUrl(inner: typeof fetch): typeof fetch {
  return (input, init) => {
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    headers.set(PAGE_URL_HEADER, currentPageUrl());
    return inner(input, {...init, headers});
  };
}

export interface DocsChatProps {
  /** Base URL of the docsrag API (no trailing slash), e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com`. */
  apiUrl: string;
  /** The domain key OpenAI issued for this site's domain (ChatKit's domain allow-list). */
  domainKey: string;
  greeting?: string;
  prompts?: StartScreenPrompt[];
  placeholder?: string;
  colorScheme?: 'light' | 'dark';
  className?: string;
  style?: CSSProperties;
}

/** The chat panel: threads, streamed answers with their sources, the history of threads. */
export function DocsChat({
  apiUrl,
  domainKey,
  greeting = 'Ask a question about these docs.',
  prompts = [],
  placeholder = 'Ask about the docs…',
  colorScheme = 'light',
  className,
  style,
}: DocsChatProps) {
  const baseUrl = apiUrl.replace(/\/+$/, '');
  // The visitor token (with one retry on 401), plus the page the visitor is reading at the moment
  // of each request: the custom `fetch` runs in this page, so it sees client-side navigation.
  const chatFetch = useMemo(() => withPageUrl(createVisitorFetch(baseUrl)), [baseUrl]);

  useEffect(() => {
    // Get or renew the visitor token early, so the first question does not wait for it.
    getVisitorToken(baseUrl).catch((error: unknown) => {
      console.warn('docsrag: could not get a visitor token yet', error);
    });
  }, [baseUrl]);

  const {control} = useChatKit({
    api: {url: `${baseUrl}/chatkit`, domainKey, fetch: chatFetch},
    theme: {colorScheme},
    startScreen: {greeting, prompts},
    composer: {placeholder},
    history: {enabled: true, showDelete: true, showRename: true},
    // Thumbs up/down are stored and counted by the backend (`items.feedback`); retry re-asks.
    threadItemActions: {feedback: true, retry: true},
    onError: ({error}) => {
      console.error('docsrag chat error', error);
    },
  });

  return (
    <ChatKit
      control={control}
      {...(className === undefined ? {} : {className})}
      style={{height: 600, width: 400, ...style}}
    />
  );
}

export interface FloatingDocsChatProps extends DocsChatProps {
  /** Text of the button that opens the chat. */
  label?: string;
}

/** A button in the corner of every page that opens and closes the chat panel. */
export function FloatingDocsChat({label = 'Ask the docs', ...chat}: FloatingDocsChatProps) {
  const [open, setOpen] = useState(false);
  const [mounted, setMounted] = useState(false); // keep the thread while the panel is closed

  return (
    <div style={{position: 'fixed', right: 16, bottom: 16, zIndex: 200}}>
      {mounted && (
        <div style={{display: open ? 'block' : 'none', marginBottom: 8}}>
          <DocsChat {...chat} />
        </div>
      )}
      <button
        type="button"
        className="button button--primary"
        aria-expanded={open}
        onClick={() => {
          setMounted(true);
          setOpen((value) => !value);
        }}>
        {open ? 'Close' : label}
      </button>
    </div>
  );
}

export default FloatingDocsChat;
