export {DocsChat, FloatingDocsChat, PAGE_URL_HEADER, currentPageUrl, withPageUrl} from './DocsChat';
export type {DocsChatProps, FloatingDocsChatProps} from './DocsChat';
export {VISITOR_HEADER, createVisitorFetch, getVisitorToken} from './visitorSession';
