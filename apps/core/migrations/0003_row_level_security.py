"""Row-level security on every tenant-owned table (see apps/core/tenancy.py).

A table added later must be listed in a migration of its own that does the same;
tests/core/test_tenancy.py fails for any TenantOwned model without it."""

from django.db import migrations

from apps.core.tenancy import CREATE_ROLE_SQL, disable_rls_sql, enable_rls_sql

TENANT_TABLES = [
    "core_auditevent",
    "organizations_membership",
    "organizations_camera",
    "organizations_apikey",
    "gallery_person",
    "gallery_faceimage",
    "gallery_faceembedding",
    "gallery_galleryimport",
    "recognition_frame",
    "recognition_calibration",
    "sightings_sighting",
    "api_idempotentrequest",
]


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_auditevent"),
        ("organizations", "0002_organization_sighting_retention_days_and_more"),
        ("gallery", "0002_galleryimport"),
        ("recognition", "0001_initial"),
        ("sightings", "0001_initial"),
        ("api", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(CREATE_ROLE_SQL, migrations.RunSQL.noop),
        migrations.RunSQL(enable_rls_sql("organizations_organization", column="id"),
                          disable_rls_sql("organizations_organization")),
        *[migrations.RunSQL(enable_rls_sql(table), disable_rls_sql(table)) for table in TENANT_TABLES],
    ]
