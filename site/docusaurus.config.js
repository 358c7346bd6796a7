// @ts-check
// The docsrag documentation as a Docusaurus site. The Markdown lives in ../docs so that the
// assistant can ingest either the sources (docs/) or this site's build output (site/build/).
//
// Versions: ../docs is the unreleased "current" version (label Next, served at /docs/next/);
// versioned_docs/version-1.1 (the latest release, served at /docs/) and version-1.0 (/docs/1.0/)
// are snapshots made with `docusaurus docs:version`. Locales: en (default) and fr (/fr/...); the
// French translations of a few pages live in i18n/fr/docusaurus-plugin-content-docs/{current,
// version-1.1}; every other page falls back to English. The blog (blog/) is served at /blog/.

import {themes as prismThemes} from 'prism-react-renderer';

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'docsrag',
  tagline: 'Your Docusaurus docs as a chatbot that cites its sources',
  url: 'http://localhost:3000',
  baseUrl: '/',
  onBrokenLinks: 'warn',
  onBrokenAnchors: 'warn',
  i18n: {
    defaultLocale: 'en',
    locales: ['en', 'fr'],
    localeConfigs: {
      en: {label: 'English', htmlLang: 'en'},
      fr: {label: 'Français', htmlLang: 'fr'},
    },
  },
  markdown: {
    // .md files are CommonMark, .mdx files are MDX.
    format: 'detect',
    hooks: {
      onBrokenMarkdownLinks: 'warn',
    },
  },
  presets: [
    [
      'classic',
      /** @type {import('@docusaurus/preset-classic').Options} */
      ({
        docs: {
          path: '../docs',
          routeBasePath: 'docs',
          sidebarPath: './sidebars.js',
          lastVersion: '1.1',
          versions: {
            current: {label: 'Next', path: 'next', banner: 'unreleased'},
            '1.1': {label: '1.1'},
            '1.0': {label: '1.0', banner: 'unmaintained'},
          },
        },
        blog: {
          path: 'blog',
          routeBasePath: 'blog',
          blogTitle: 'docsrag blog',
          blogDescription: 'Releases and notes from the docsrag project',
          showReadingTime: true,
          onInlineAuthors: 'ignore',
          onInlineTags: 'ignore',
          onUntruncatedBlogPosts: 'ignore',
        },
        theme: {},
      }),
    ],
  ],
  themeConfig:
    /** @type {import('@docusaurus/preset-classic').ThemeConfig} */
    ({
      navbar: {
        title: 'docsrag',
        items: [
          {type: 'docSidebar', sidebarId: 'docs', position: 'left', label: 'Docs'},
          {to: '/blog', label: 'Blog', position: 'left'},
          {type: 'docsVersionDropdown', position: 'right'},
          {type: 'localeDropdown', position: 'right'},
        ],
      },
      footer: {
        style: 'dark',
        links: [
          {
            title: 'Docs',
            items: [
              {label: 'Introduction', to: '/docs/'},
              {label: 'Getting started', to: '/docs/getting-started'},
              {label: 'Troubleshooting', to: '/docs/troubleshooting'},
            ],
          },
          {
            title: 'More',
            items: [
              {label: 'Blog', to: '/blog'},
              {label: 'Next version', to: '/docs/next/'},
              {label: 'Version 1.0', to: '/docs/1.0/'},
            ],
          },
        ],
        copyright: 'docsrag sample documentation. Built with Docusaurus.',
      },
      prism: {
        theme: prismThemes.github,
        darkTheme: prismThemes.dracula,
        additionalLanguages: ['bash', 'json'],
      },
    }),
};

export default config;
