"""Dummy API keys, one per cloud provider, shaped like real ones so redaction is tested on realistic values.
Tests assert that none of these ever appears in output, errors or files."""

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-SECRET-claude-0123456789",
    "MOONSHOT_API_KEY": "sk-SECRET-moonshot-0123456789",
    "OPENAI_API_KEY": "sk-proj-SECRET-openai-0123456789",
}
