"""Comment text on the page: escaped plain text, line breaks kept, resolved @mentions marked."""

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from workbench.selectors.discussion import inbox_unread_count
from workbench.services.comments import MENTION

register = template.Library()


@register.filter
def comment_body(comment) -> str:
    known = {name.lower() for name in comment.mentioned or ()}
    text = conditional_escape(comment.body)

    def mark(m):
        name = m.group(1)
        return f'<strong class="mention">@{name}</strong>' if name.lower() in known else m.group(0)

    # Escaped first, then marked: the names matched are [\w.@+-] only, so nothing typed becomes markup.
    return mark_safe(MENTION.sub(mark, text).replace("\n", "<br>"))


@register.simple_tag
def unread_messages(user) -> int:
    """The nav badge's count: one indexed COUNT per page."""
    return inbox_unread_count(user)
