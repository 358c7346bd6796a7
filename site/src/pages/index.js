import React from 'react';
import Link from '@docusaurus/Link';
import Layout from '@theme/Layout';

export default function Home() {
  return (
    <Layout title="docsrag" description="Turn a Docusaurus site into a docs assistant that cites its sources.">
      <main className="container margin-vert--xl">
        <h1>docsrag</h1>
        <p>
          A serverless assistant that answers questions from your Docusaurus documentation and
          links every answer to the exact section it came from.
        </p>
        <Link className="button button--primary" to="/docs/">
          Read the docs
        </Link>
      </main>
    </Layout>
  );
}
