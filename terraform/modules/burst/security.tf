# Workers reach the master on its gRPC port and nothing else of the master;
# nothing reaches the workers.

resource "aws_security_group" "worker" {
  name_prefix = "${var.name}-worker-"
  description = "burst workers: outbound only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-worker" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "worker_out" {
  for_each          = toset(var.worker_egress_cidrs)
  security_group_id = aws_security_group.worker.id
  description       = "builds fetch sources and packages"
  ip_protocol       = "-1"
  cidr_ipv4         = each.value
}

resource "aws_security_group" "master" {
  count       = var.master_security_group_id == null ? 1 : 0
  name_prefix = "${var.name}-master-"
  description = "burst master: gRPC from workers"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-master" })

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  master_security_group_id = coalesce(var.master_security_group_id, one(aws_security_group.master[*].id))
}

resource "aws_vpc_security_group_ingress_rule" "master_grpc_from_workers" {
  security_group_id            = local.master_security_group_id
  description                  = "burst workers dial the master's gRPC endpoint"
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
  referenced_security_group_id = aws_security_group.worker.id
}
