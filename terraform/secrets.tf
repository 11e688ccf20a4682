# Secret Manager: every secret adloop reads, each readable only by the service accounts that need it.
# Values come from variables (or are generated: database passwords, the Redis AUTH string) and are never
# written to a file in this repository.

resource "google_secret_manager_secret" "adloop" {
  for_each  = local.secret_values
  secret_id = "adloop-${each.key}"
  replication {
    auto {}
  }
  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "adloop" {
  for_each    = local.secret_values
  secret      = google_secret_manager_secret.adloop[each.key].id
  secret_data = each.value
}

resource "google_secret_manager_secret_iam_member" "reader" {
  for_each  = local.service_secret_pairs
  secret_id = google_secret_manager_secret.adloop[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.service[each.value.service].email}"
}
