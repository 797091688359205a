"""Handlers of the platform's content agents: they learn into the knowledge base
(research findings, review lessons, published articles) and later tasks find what
earlier ones learned by searching it."""

from __future__ import annotations

import json
import re
from typing import Any

from agentos.worker.handlers import Context

STOP_WORDS = frozenset(["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how",
                        "in", "is", "it", "of", "on", "or", "the", "to", "what", "when", "why",
                        "with"])
MARK = re.compile(r"</?mark>")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def any_of(topic: str) -> str:
    """A full-text query matching documents with any of the topic's words (both
    engines take OR; a document with more of them ranks first)."""
    words = [w for w in re.findall(r"[a-z0-9]+", topic.lower()) if w not in STOP_WORDS]
    return " OR ".join(words) or topic


async def research(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Read what the knowledge base knows about the topic, have the model list the
    findings, and keep them as ``research/<topic>`` for later tasks."""
    topic = str(data["topic"])
    found = await ctx.knowledge.search(any_of(topic), limit=int(ctx.config["sources"]))
    sources = [f"{d['namespace']}/{d['key']}" for d in found]
    notes = "\n".join(f"- {d['title']}: {MARK.sub('', d.get('snippet') or '')}" for d in found)
    reply = await ctx.llm.chat([
        {"role": "system", "content": "You list the findings that matter for an article."},
        {"role": "user", "content": f"Topic: {topic}\nWhat we know:\n{notes or '- nothing yet'}"}])
    key = slug(topic)
    await ctx.knowledge.put("research", key, reply.content, title=f"Research: {topic}",
                            tags=["research"], metadata={"sources": sources,
                                                         "task": ctx.task["id"]})
    ctx.metrics.count("knowledge.learned", 1, tags={"namespace": "research"})
    return {"topic": topic, "findings": reply.content, "sources": sources,
            "stored": f"research/{key}"}


async def write(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Draft the article, applying the lessons earlier reviews of related topics left."""
    topic, sources = str(data["topic"]), list(data.get("sources") or [])
    lessons = await ctx.knowledge.search(any_of(topic), namespace="lessons", limit=3)
    advice = "\n".join(f"- {MARK.sub('', d.get('snippet') or '')}" for d in lessons)
    reply = await ctx.llm.chat([
        {"role": "system", "content": "You write short, plain engineering articles."},
        {"role": "user", "content": f"Write about: {topic}\nFindings:\n{data['findings']}"
                                    + (f"\nLessons from earlier reviews:\n{advice}"
                                       if lessons else "")}])
    draft = f"{topic}\n\n{reply.content}\n\nSources: {', '.join(sources) or 'none'}"
    return {"draft": draft, "words": len(draft.split()),
            "applied_lessons": [f"lessons/{d['key']}" for d in lessons]}


async def review(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Check the draft against the style guide, ask the model for a verdict, and keep
    the lesson as ``lessons/<topic>-<task>`` so later drafts on related topics apply it."""
    topic, draft = str(data["topic"]), str(data["draft"])
    sources = list(data.get("sources") or [])
    checks = {"long_enough": len(draft.split()) >= int(ctx.config["min_words"]),
              "cites_sources": bool(sources) and all(s in draft for s in sources),
              "names_the_topic": topic.lower() in draft.lower()}
    reply = await ctx.llm.chat([
        {"role": "system", "content": 'Review the draft. Answer {"verdict": "pass"|"fail", '
                                      '"notes": "..."} as JSON.'},
        {"role": "user", "content": draft}], json=True)
    verdict = _verdict(reply.content)
    score = round((sum(checks.values()) + (verdict == "pass")) / (len(checks) + 1), 2)
    missing = [name.replace("_", " ") for name, ok in checks.items() if not ok]
    lesson = (f"Reviewing '{topic}': " + (f"fix: {', '.join(missing)}. " if missing else "")
              + "Cite every runbook used under Sources and name the topic in the title.")
    key = f"{slug(topic)}-{ctx.task['id'][-8:]}"
    await ctx.knowledge.put("lessons", key, lesson, title=f"Lesson: {topic}",
                            tags=["lesson"], metadata={"score": score})
    ctx.metrics.count("knowledge.learned", 1, tags={"namespace": "lessons"})
    ctx.metrics.observe("review.score", score)
    return {"score": score, "checks": checks, "verdict": verdict, "lesson": f"lessons/{key}"}


def _verdict(content: str) -> str:
    try:
        said = json.loads(content)
    except ValueError:
        return "unknown"
    return str(said.get("verdict", "unknown")) if isinstance(said, dict) else "unknown"


async def publish(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Publish an approved article: into the knowledge base, as the run's artifact, and
    as an ``article.published`` event."""
    topic, draft = str(data["topic"]), str(data["draft"])
    key = slug(topic)
    await ctx.knowledge.put("articles", key, draft, title=topic, tags=["article"],
                            metadata={"score": data.get("score")})
    await ctx.artifact("article", {"topic": topic, "text": draft, "score": data.get("score")})
    await ctx.emit("article.published", {"topic": topic, "key": f"articles/{key}"})
    ctx.metrics.count("articles.published", 1)
    return {"published": f"articles/{key}"}
