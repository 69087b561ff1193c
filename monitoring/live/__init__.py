"""The live feed to dashboards: the one publishing door (``publish.live_publish``), the event
builders and group names (``events``, ``groups``), the subscription kinds and what higher apps
register (``subscriptions``, ``registry``), the state of the feed while Redis is away
(``feed``), and the two private backends behind the door: the process-local hub (``hub``) and
the channel layer (``layer``)."""
