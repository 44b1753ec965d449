//! Model qualification: is a provider fit for Claude Code's agentic work?
