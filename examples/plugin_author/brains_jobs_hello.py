"""brains-jobs-hello: a complete plugin with one job type, `hello.greet`."""

import brains_jobs as bj
from pydantic import BaseModel


class Greeting(BaseModel):
    name: str


class Greeted(BaseModel):
    text: str
    card: bj.ArtifactRef


@bj.job("hello.greet", max_attempts=3, timeout=10)
async def greet(ctx: bj.JobContext, inp: Greeting) -> Greeted:
    """Greet someone, and keep the greeting as a text file (an artifact)."""
    if inp.name == "nobody":
        raise bj.PermanentError("nobody cannot be greeted")  # fail now: retrying cannot help
    text = f"Hello, {inp.name}!"
    await ctx.progress(0.5, "greeting composed")
    card = await ctx.artifacts.put(text.encode(), name="card.txt", content_type="text/plain")
    return Greeted(text=text, card=card)


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    register(greet)
