"""Staff provisioning API, the order-addressed writes (/api/v1/provisioning/provision/ and
manual/): billing resolves the order and checks it is paid (only billing knows orders), the
work is provisioning's. The rest of the provisioning API is provisioning.apis."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.services.order_provisioning import order_link_manual_server, order_provision
from common.openapi import error_responses
from common.permissions import STAFF, api_actor
from provisioning import api_selectors
from provisioning.apis import PROVISIONING_SCOPES, RunSerializer

_MAX_ID = 2**63 - 1
# Panel ids are stored in PostgreSQL integer columns.
_MAX_PANEL_ID = 2**31 - 1


class ProvisionInputSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1, max_value=_MAX_ID)


class ProvisionResultSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    deployment_id = serializers.IntegerField()
    request_status = serializers.CharField(help_text="The provisioning request's status.")
    started = serializers.BooleanField(help_text="Whether this call started the run.")
    run = RunSerializer(allow_null=True, help_text="The run (null once linked by hand).")


class ManualInputSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1, max_value=_MAX_ID)
    panel_server_id = serializers.IntegerField(min_value=1, max_value=_MAX_PANEL_ID)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class ManualResultSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    deployment_id = serializers.IntegerField()
    deployment_status = serializers.CharField()
    panel_server_id = serializers.IntegerField()
    panel_server_uuid = serializers.CharField()
    panel_identifier = serializers.CharField()
    node_id = serializers.IntegerField(allow_null=True)
    ip_address = serializers.CharField(allow_blank=True)
    port = serializers.IntegerField(allow_null=True)


class ProvisionApi(APIView):
    """Queue a paid order's deployment. Idempotent: a second call returns the existing run
    (200), never a second server; 202 when this call started a run."""

    permission_classes = STAFF
    required_perms = {"POST": ("servers.change_deployment",)}
    required_scopes = PROVISIONING_SCOPES

    @extend_schema(
        operation_id="provisioning_provision_create",
        request=ProvisionInputSerializer,
        responses={
            200: OpenApiResponse(ProvisionResultSerializer, description="Already queued or done."),
            202: OpenApiResponse(ProvisionResultSerializer, description="Run started."),
            **error_responses(404),
        },
    )
    def post(self, request: Request) -> Response:
        payload = ProvisionInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        order, queued = order_provision(
            order_id=payload.validated_data["order_id"], actor=api_actor(request)
        )
        run: Any = api_selectors.run_get(run_id=queued.run.pk) if queued.run else None
        body = ProvisionResultSerializer(
            {
                "order_id": order.pk,
                "deployment_id": order.deployment_id,
                "request_status": queued.request.status,
                "started": queued.started,
                "run": run,
            }
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED if queued.started else 200)


class ManualProvisionApi(APIView):
    """Record a server created by hand on the panel and link it to the paid order's
    deployment (read back from the panel: uuid, identifier, node, primary allocation)."""

    permission_classes = STAFF
    required_perms = {"POST": ("servers.change_deployment",)}
    required_scopes = PROVISIONING_SCOPES

    @extend_schema(
        operation_id="provisioning_manual_create",
        request=ManualInputSerializer,
        responses={200: ManualResultSerializer, **error_responses(404, 502)},
    )
    def post(self, request: Request) -> Response:
        payload = ManualInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        order, link = order_link_manual_server(
            order_id=data["order_id"],
            panel_server_id=data["panel_server_id"],
            note=data["note"],
            actor=api_actor(request),
        )
        deployment = link.deployment
        body = ManualResultSerializer(
            {
                "order_id": order.pk,
                "deployment_id": deployment.pk,
                "deployment_status": deployment.status,
                "panel_server_id": deployment.panel_server_id,
                "panel_server_uuid": deployment.panel_server_uuid,
                "panel_identifier": deployment.panel_identifier,
                "node_id": deployment.node_id,
                "ip_address": deployment.ip_address,
                "port": deployment.port,
            }
        ).data
        return Response(body)
