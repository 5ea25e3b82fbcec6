"""How a subcommand prints an error: one paragraph, whatever its source."""


def one_paragraph(error: BaseException, limit: int = 1500) -> str:
  """`error`'s text on one line, cut to `limit` characters."""
  text = ' '.join(str(error).split())
  return text if len(text) <= limit else text[:limit] + ' ...'
