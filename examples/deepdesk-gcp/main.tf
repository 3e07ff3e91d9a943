# deepdesk-gcp: the cluster-wide Flux-compatible installation (what the old `flux` module deployed with a
# local Helm chart): CRDs, flux-runner, the two GitRepositories, image scanning for the services in
# staging, the image update automation, the webhook Receivers behind an Ingress (GitHub pushes to
# deepdesk-config, CI's image pushes), and the PodMonitor.
#
# Every address is a variable with Deepdesk's value as default, so the same file runs against local
# stand-ins (examples/quickstart.sh: a local registry, git server and webhook port).
terraform {
  required_providers {
    flux = {
      source = "deepdesk/flux"
    }
  }
}

variable "kubeconfig" {
  description = "Path of the kubeconfig of the GKE cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "github_token" {
  description = "Token with read/write access to deepdesk-config and read access to deepdesk-helmcharts."
  type        = string
  sensitive   = true
  default     = "change-me"
}

variable "helmcharts_url" {
  description = "Git URL of deepdesk-helmcharts (the service charts)."
  type        = string
  default     = "https://github.com/deepdesk/deepdesk-helmcharts"
}

variable "config_url" {
  description = "Git URL of deepdesk-config (the per-account HelmReleases the automation writes to)."
  type        = string
  default     = "https://github.com/deepdesk/deepdesk-config"
}

variable "registry" {
  description = "Registry path the service images are pushed to."
  type        = string
  default     = "eu.gcr.io/deepdesk-cloud"
}

variable "gcp_workload_identity" {
  description = "Read the registry with the runner's GCP workload identity (false: anonymous, e.g. a local registry)."
  type        = bool
  default     = true
}

variable "webhook_host" {
  description = "Public host of the webhook Receivers (Ingress)."
  type        = string
  default     = "flux-webhook.deepdesk.com"
}

variable "services" {
  description = "Services whose staging image follows the newest main-<sha>-<unix ts> tag."
  type        = list(string)
  default     = ["backend", "engine"]
}

provider "flux" {
  config_path = var.kubeconfig
}

resource "flux_installation" "flux" {
  runner {
    replicas  = 1
    log_level = "info"
  }

  source {
    name     = "deepdesk-helmcharts"
    url      = var.helmcharts_url
    branch   = "main"
    interval = "5m"
    credentials {
      username = "git"
      password = var.github_token
    }
  }
  source {
    name     = "deepdesk-config"
    url      = var.config_url
    branch   = "main"
    interval = "1m"
    credentials {
      username = "git"
      password = var.github_token
    }
  }

  dynamic "image" {
    for_each = toset(var.services)
    content {
      name  = image.value
      image = "${var.registry}/${image.value}"
    }
  }

  # Tags main-<sha>-<unix ts>; the newest timestamp wins (the provider's default filter and order).
  dynamic "policy" {
    for_each = toset(var.services)
    content {
      name             = "${policy.value}-staging"
      image_repository = policy.value
    }
  }

  registry_credentials {
    gcp_workload_identity = var.gcp_workload_identity
    gcp_service_account   = var.gcp_workload_identity ? "flux@deepdesk-cloud.iam.gserviceaccount.com" : null
  }

  image_update_automation {
    source       = "deepdesk-config"
    path         = "./k8s"
    author_name  = "fluxcdbot"
    author_email = "fluxcdbot@deepdesk.com"
  }

  pod_monitor {
    labels = { release = "prometheus" }
  }

  ingress {
    host            = var.webhook_host
    class_name      = "nginx"
    tls_secret_name = "flux-webhook-tls"
    annotations     = { "cert-manager.io/cluster-issuer" = "letsencrypt" }
  }
}

# GitHub calls this on every push to deepdesk-config, so a commit reaches the accounts at once.
resource "flux_receiver" "github" {
  name     = "github"
  type     = "github"
  events   = ["ping", "push"]
  base_url = flux_installation.flux.webhook_base_url

  resource {
    kind = "GitRepository"
    name = "deepdesk-config"
  }

  depends_on = [flux_installation.flux]
}

# CI calls this right after pushing a service image (a registry-style notification naming the
# repository and tag), so the new tag is scanned, picked and committed at once instead of at the
# next scan interval.
resource "flux_receiver" "images" {
  name     = "images"
  type     = "generic"
  base_url = flux_installation.flux.webhook_base_url

  dynamic "resource" {
    for_each = toset(var.services)
    content {
      kind = "ImageRepository"
      name = resource.value
    }
  }

  depends_on = [flux_installation.flux]
}

output "github_webhook_url" {
  description = "Payload URL to configure on the deepdesk-config repository's GitHub webhook."
  value       = flux_receiver.github.webhook_url
}

output "github_webhook_secret" {
  description = "Secret of that webhook."
  value       = flux_receiver.github.token
  sensitive   = true
}

output "image_webhook_url" {
  description = "URL CI posts to after pushing a service image."
  value       = flux_receiver.images.webhook_url
}

output "image_webhook_path" {
  description = "Path of that webhook on the runner's webhook port (/hook/<digest>)."
  value       = flux_receiver.images.webhook_path
}
