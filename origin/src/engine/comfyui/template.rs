//! Workflow templates and how a job fills them. (Work in progress.)
