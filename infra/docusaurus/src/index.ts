export {DocsChat, FloatingDocsChat} from './DocsChat';
export type {DocsChatProps, FloatingDocsChatProps} from './DocsChat';
export {VISITOR_HEADER, createVisitorFetch, getVisitorToken} from './visitorSession';
