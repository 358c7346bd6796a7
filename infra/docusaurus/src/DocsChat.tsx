/**
 * The docsrag chat for a Docusaurus site: ChatKit's widget against a docsrag backend.
 *
 * ChatKit's web component (`<openai-chatkit>`) is loaded from OpenAI's CDN by a script tag the
 * site adds (see README.md); this component configures it through `@openai/chatkit-react`.
 * Render it in the browser only (Docusaurus `BrowserOnly`): it uses `window` and localStorage.
 */
import {ChatKit, useChatKit} from '@openai/chatkit-react';
import type {StartScreenPrompt} from '@openai/chatkit-react';
import {useEffect, useMemo, useState} from 'react';
import type {CSSProperties} from 'react';

import {createVisitorFetch, getVisitorToken} from './visitorSession';

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
  const visitorFetch = useMemo(() => createVisitorFetch(baseUrl), [baseUrl]);

  useEffect(() => {
    // Get or renew the visitor token early, so the first question does not wait for it.
    getVisitorToken(baseUrl).catch((error: unknown) => {
      console.warn('docsrag: could not get a visitor token yet', error);
    });
  }, [baseUrl]);

  const {control} = useChatKit({
    api: {url: `${baseUrl}/chatkit`, domainKey, fetch: visitorFetch},
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
