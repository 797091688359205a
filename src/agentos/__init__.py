"""AgentOS: the durable backbone for fleets of cooperating AI agents."""

__version__ = "0.1.0"
