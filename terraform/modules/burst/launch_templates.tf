# One launch template per worker OS. IMDSv2 only (a hop limit of 1 keeps
# build containers away from it); an instance that shuts itself down is
# terminated. The burst master supplies user-data and tags at launch.

resource "aws_launch_template" "linux" {
  count                                = var.linux_ami_id == null ? 0 : 1
  name                                 = "${var.name}-linux"
  description                          = "burst Linux workers"
  image_id                             = var.linux_ami_id
  vpc_security_group_ids               = [aws_security_group.worker.id]
  instance_initiated_shutdown_behavior = "terminate"
  update_default_version               = true
  tags                                 = var.tags

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = var.linux_root_device_name
    ebs {
      volume_size           = var.root_volume_size
      volume_type           = var.root_volume_type
      delete_on_termination = true
      encrypted             = true
    }
  }
}

resource "aws_launch_template" "windows" {
  count                                = var.windows_ami_id == null ? 0 : 1
  name                                 = "${var.name}-windows"
  description                          = "burst Windows workers"
  image_id                             = var.windows_ami_id
  vpc_security_group_ids               = [aws_security_group.worker.id]
  instance_initiated_shutdown_behavior = "terminate"
  update_default_version               = true
  tags                                 = var.tags

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = var.windows_root_device_name
    ebs {
      volume_size           = max(var.root_volume_size, 50)
      volume_type           = var.root_volume_type
      delete_on_termination = true
      encrypted             = true
    }
  }
}
