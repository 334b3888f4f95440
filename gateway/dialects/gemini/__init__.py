"""Gemini's generativelanguage API (`generateContent`, `streamGenerateContent`,
`countTokens`, `embedContent`, `batchEmbedContents`) as dialects of the request path."""
