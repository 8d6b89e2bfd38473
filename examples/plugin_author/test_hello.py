import brains_jobs as bj
import pytest

import brains_jobs_hello as hello


@pytest.mark.anyio
async def test_greet(bj_runtime_factory, bj_run_job) -> None:
    async with bj_runtime_factory(plugins=[hello]) as rt:
        out = await bj_run_job(rt, hello.greet, {"name": "Ada"})
        assert await rt.artifacts.get(out.card) == out.text.encode() == b"Hello, Ada!"
        with pytest.raises(bj.JobFailed, match="nobody cannot be greeted"):
            await bj_run_job(rt, hello.greet, {"name": "nobody"})
