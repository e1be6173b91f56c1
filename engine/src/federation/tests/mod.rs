//! Tests of the federation module: the rewrite both ways, and the merge of pages.

mod merge;
mod rewrite;
