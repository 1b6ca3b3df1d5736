"""DeployModelOperator: roll a registered version out to the model server with an A/B share."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf

from airflow_mlops.core import tags
from airflow_mlops.exceptions import DeploymentError, ServingError, ServingTimeoutError
from airflow_mlops.hooks.serving import ServingHook
from airflow_mlops.operators.base import serving_failure

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class DeployModelOperator(BaseOperator):
    """Make every serving instance load ``arm``'s new version, smoke-test it, then give it traffic.

    Steps: ask each instance to reload the registry aliases; wait (in the triggerer when
    ``deferrable``) until every instance reports ``expected`` versions in ``/ready``; send one smoke
    request per instance; set the challenger's traffic share. If any step fails the challenger's
    share is set back to 0, so all traffic stays on the champion, and the task fails.

    :param arm: ``challenger`` (A/B rollout) or ``champion`` (a new champion, share reset to 0).
    :param version: the version the arm must serve. (templated)
    :param smoke_features: one feature row for the smoke request; empty: no smoke request. (templated)
    :param challenger_share: traffic share for the challenger after a successful rollout.
    :param serving_conn_id: connection of type ``mlops_serving``.
    :param ready_timeout: seconds to wait for every instance.
    :param deferrable: wait in the triggerer.
    :param model: on a server of several models, the registered model to deploy (its calls go to
        ``/models/{model}/...``; the other models are left alone); ``None``: a single-model server.
    :param registered_model: the registered model this rollout is for: when given, every instance
        must serve it (its ``/ready`` says which), else the task fails before anything changes.
    """

    template_fields: Sequence[str] = ("version", "smoke_features")
    ui_color = "#e8f4d9"

    def __init__(
        self,
        *,
        version: Any,
        smoke_features: Any,
        arm: str = tags.CHALLENGER,
        challenger_share: float = 0.1,
        serving_conn_id: str = ServingHook.default_conn_name,
        ready_timeout: float = 300.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        model: str | None = None,
        registered_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if arm not in ("challenger", "champion"):
            raise ValueError(f"arm: expected 'challenger' or 'champion', found {arm!r}")
        self.arm = arm
        self.version = version
        self.smoke_features = smoke_features
        self.challenger_share = challenger_share
        self.serving_conn_id = serving_conn_id
        self.ready_timeout = ready_timeout
        self.deferrable = deferrable
        self.model = model
        self.registered_model = registered_model

    @cached_property
    def hook(self) -> ServingHook:
        """The serving hook."""
        return ServingHook(serving_conn_id=self.serving_conn_id, model=self.model)

    def _expected(self) -> dict[str, str]:
        version = getattr(self.version, "get", lambda _k: None)("version") or self.version
        return {self.arm: str(version)}

    def execute(self, context: Context) -> Any:
        if self.registered_model:
            try:
                self.hook.check_serves(self.registered_model)
            except ServingError as err:  # the server is not changed yet: no withdrawal, it would touch the other model
                raise serving_failure(f"{err}; the model server was not changed", err) from err
        self._guarded(self._reload)
        if self.deferrable:
            from airflow_mlops.triggers.serving import ServingReadyTrigger

            self.defer(
                trigger=ServingReadyTrigger(
                    serving_conn_id=self.serving_conn_id,
                    expected=self._expected(),
                    timeout=self.ready_timeout,
                    model=self.model,
                ),
                method_name="execute_complete",
            )
        self._guarded(self._wait_ready)
        return self._finish()

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after all instances became ready (or not)."""
        if not event or event.get("status") != "success":
            self._withdraw()
            raise DeploymentError(
                f"serving not ready with {self._expected()}: {(event or {}).get('message', 'no event')}; "
                "traffic left on the champion"
            )
        return self._finish()

    def _reload(self) -> None:
        """Ask every instance to re-read the aliases; one still loading past the timeout is waited for, not failed.

        A reload loads the new version before it answers, which can outlast the connection's
        ``timeout`` on a busy host. Readiness (``/ready`` serving the expected version, within
        ``ready_timeout``) is what decides the rollout, so a timed-out reload goes on to that check.
        """
        try:
            self.hook.reload()
        except ServingTimeoutError as err:
            self.log.warning(
                "%s; the server may still be loading, so the rollout waits up to %ss for it to serve %s",
                err, self.ready_timeout, self._expected(),
            )  # fmt: skip

    def _wait_ready(self) -> None:
        try:
            self.hook.wait_ready(self._expected(), timeout=self.ready_timeout)
        except ServingError as err:
            raise DeploymentError(str(err)) from err

    def _finish(self) -> dict[str, Any]:
        expected = self._expected()
        urls: list[str] = self._guarded(self.hook.get_conn)  # resolved once: a dns+ name may list other pods later
        if not self.smoke_features:  # a person's promotion of a version its training run smoke-tested
            self.log.info("No smoke request: no feature row was given")
        for url in urls if self.smoke_features else []:
            answer = self._guarded(
                lambda url=url: self.hook.predict(url, dict(self.smoke_features), key="smoke-test", arm=self.arm)
            )
            if str(answer.get("version")) not in expected.values():
                self._withdraw()
                raise DeploymentError(f"smoke request to {url} was answered by {answer}, expected {expected}")
        share = self.challenger_share if self.arm == tags.CHALLENGER else 0.0
        self._guarded(lambda: self.hook.set_traffic(share))
        self.log.info("Deployed %s to %d instance(s); challenger share %.2f", expected, len(urls), share)
        return {"deployed": expected, "challenger_share": share, "instances": urls}

    def _guarded(self, step: Any) -> Any:
        try:
            return step()
        except DeploymentError:
            raise
        except Exception as err:
            self._withdraw()
            raise DeploymentError(f"deployment step failed: {err}; traffic left on the champion") from err

    def _withdraw(self) -> None:
        try:
            self.hook.set_traffic(0.0)
        except Exception as err:  # the instance may be the thing that is down
            self.log.warning("Could not reset the challenger share to 0: %s", err)
