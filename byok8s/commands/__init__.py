"""One module per command: each `main` takes the command's options and returns
its exit code; byok8s.cli declares the options and dispatches. Secrets a command
learns (storage credentials) go into `secrets`, so that its error is redacted."""
